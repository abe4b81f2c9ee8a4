/**
 * `AccountingClient`: the library a scheduler books through (docs/api.md "Writing a scheduler
 * against cueacct").
 *
 * - One keep-alive agent per client; reuse one client for the whole process.
 * - `book`, `confirm` and `rollback` are micro-batched: every call made before the event loop
 *   next checks for I/O (`setImmediate`, well under a millisecond) goes out as one
 *   `POST /v1/batch`, and each caller gets its own entry. While `maxInFlightBatches` batches
 *   are on the wire, new calls queue and leave together in the next one.
 * - An HTTP 503 (daemon not ready, lock lost, key still resolving — for the whole batch or
 *   one entry) is retried with capped exponential backoff and jitter, waiting at least what
 *   `Retry-After` asks; nothing was applied by a 503, so the retry is safe.
 * - `withBooking` carries one booking through the protocol: book → the caller's proc insert
 *   → confirm, or rollback when nothing was inserted, and refuses to start the insert once
 *   the lease deadline is too close.
 */
import type {
  BookResponse,
  ConfirmResponse,
  RollbackResponse,
  StateResponse,
  StatusResponse,
} from '../api/types.js';
import type { BookingRequest } from '../core/types.js';
import { DEFAULT_DAEMON_URL, parseDaemonAddress, type DaemonAddress } from './address.js';
import { AccountingClientError } from './errors.js';
import { JsonTransport, type Query, type RawAnswer } from './transport.js';

export interface RetryPolicy {
  /** Tries in all, the first included (default 8). */
  attempts: number;
  /** First backoff (default 25 ms); doubles per try up to `maxDelayMs`, with jitter. */
  baseDelayMs: number;
  maxDelayMs: number;
}

export interface AccountingClientOptions {
  /** `http(s)://host:port[/prefix]` or `unix:/path`; default `http://127.0.0.1:7878`. */
  url?: string;
  /** Bearer token of the daemon (`--token` / `CUEACCT_TOKEN` on its side). */
  token?: string;
  /** Per-request deadline, connect included (default 10 s). */
  timeoutMs?: number;
  /** Keep-alive sockets (default 4). */
  maxSockets?: number;
  /** Batches on the wire at once before new calls queue for the next one (default 2). */
  maxInFlightBatches?: number;
  /** Most ops in one `/v1/batch` (the daemon's limit is 10,000). */
  maxBatchOps?: number;
  retry?: Partial<RetryPolicy>;
  /** Describes the address in messages (the CLI passes its own redaction). */
  describeUrl?: (url: URL) => string;
}

export type BatchOp =
  | ({ op: 'book' } & BookingRequest)
  | { op: 'confirm'; booking: string }
  | { op: 'rollback'; booking: string };

/** One entry of a `/v1/batch` answer: the status the single endpoint would have answered, and its body. */
export type BatchEntry = { status: number } & Record<string, unknown>;

/** The answer of `book`: what `/v1/book` answers, and `insert_deadline` when the daemon sends one. */
export type BookAnswer = BookResponse;

export type AdminAction = 'recompute' | 'reseed' | 'refresh-shows';

export interface WithBookingOptions {
  /** Refuse to start the insert when less than this is left before the deadline (default 2 s). */
  marginMs?: number;
  /** Clock, for tests (default Date.now). */
  now?: () => number;
}

/** What the insert callback gets: the booking id and the instant after which it must not insert. */
export interface InsertContext {
  booking: string;
  deadline: Date;
}

export type WithBookingOutcome<T> =
  | { result: 'confirmed'; booking: string; value: T }
  | { result: 'rolled_back'; booking: string; reason: 'not_inserted' | 'too_late' }
  /** The lease ended before the confirm arrived: the daemon settled it as confirmed. */
  | { result: 'lease_expired'; booking: string; value?: T }
  | Exclude<BookResponse, { result: 'applied' }>;

interface Pending {
  op: BatchOp;
  tries: number;
  resolve(entry: BatchEntry): void;
  reject(err: unknown): void;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 8, baseDelayMs: 25, maxDelayMs: 2_000 };

export class AccountingClient {
  readonly address: DaemonAddress;
  private readonly transport: JsonTransport;
  private readonly retryPolicy: RetryPolicy;
  private readonly maxInFlight: number;
  private readonly maxBatchOps: number;
  private queue: Pending[] = [];
  private flushScheduled = false;
  private inFlight = 0;
  private closed = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Batches sent and ops carried, for tests and the benchmark. */
  readonly stats = { batches: 0, ops: 0, retries: 0 };

  constructor(options: AccountingClientOptions = {}) {
    this.address = parseDaemonAddress(options.url ?? DEFAULT_DAEMON_URL, options.describeUrl);
    this.transport = new JsonTransport(this.address, {
      token: options.token,
      timeoutMs: options.timeoutMs ?? 10_000,
      maxSockets: options.maxSockets ?? 4,
    });
    this.retryPolicy = { ...DEFAULT_RETRY, ...options.retry };
    this.maxInFlight = options.maxInFlightBatches ?? 2;
    this.maxBatchOps = options.maxBatchOps ?? 10_000;
  }

  /** The daemon address for messages (no credentials). */
  get describe(): string {
    return this.address.describe;
  }

  // ---- the booking protocol -------------------------------------------------------------

  /**
   * Check and apply one booking. Resolves with the daemon's answer (`applied` with a booking
   * id and lease, `limit_exceeded`, `not_managed`); rejects with an {@link AccountingClientError}
   * when the request is invalid (`rejected`), the daemon stayed unavailable (`unavailable`) or
   * cannot be reached (`unreachable`).
   */
  async book(request: BookingRequest): Promise<BookAnswer> {
    const entry = await this.enqueue({ op: 'book', ...request });
    if (entry.status === 200 || entry.status === 409) return withoutStatus(entry) as BookAnswer;
    throw this.entryError('book', entry);
  }

  /** The proc row committed. `unknown_booking` / `lease_expired` come back as answers, not errors. */
  async confirm(booking: string): Promise<ConfirmResponse> {
    return this.settle('confirm', booking) as Promise<ConfirmResponse>;
  }

  /** Nothing was inserted for this booking: give its capacity back. */
  async rollback(booking: string): Promise<RollbackResponse> {
    return this.settle('rollback', booking) as Promise<RollbackResponse>;
  }

  /**
   * Carry one booking through the protocol. `insert` runs only for an applied booking with
   * more than `marginMs` left before its deadline (`insert_deadline` when the daemon sends
   * one, else the lease expiry); it must resolve `true` once the proc row is committed and
   * `false` when it certainly inserted nothing. A throw means "unknown": the booking is then
   * confirmed (an over-count until the next recompute, never an under-count) and the error
   * rethrown.
   */
  async withBooking<T>(
    request: BookingRequest,
    insert: (context: InsertContext) => Promise<{ inserted: true; value: T } | { inserted: false }>,
    options: WithBookingOptions = {},
  ): Promise<WithBookingOutcome<T>> {
    const now = options.now ?? Date.now;
    const marginMs = options.marginMs ?? 2_000;
    const answer = await this.book(request);
    if (answer.result !== 'applied') return answer;
    const booking = answer.booking;
    const deadlineText = (answer as { insert_deadline?: string }).insert_deadline ?? answer.lease_expires_at;
    const deadline = new Date(deadlineText);
    if (!(deadline.getTime() - now() > marginMs)) {
      await this.rollback(booking);
      return { result: 'rolled_back', booking, reason: 'too_late' };
    }
    let outcome: { inserted: true; value: T } | { inserted: false };
    try {
      outcome = await insert({ booking, deadline });
    } catch (err) {
      await this.confirm(booking).catch(() => undefined);
      throw err;
    }
    if (!outcome.inserted) {
      const rolled = await this.rollback(booking);
      if ('error' in rolled && rolled.error === 'lease_expired') return { result: 'lease_expired', booking };
      return { result: 'rolled_back', booking, reason: 'not_inserted' };
    }
    const confirmed = await this.confirm(booking);
    if ('error' in confirmed) {
      if (confirmed.error === 'lease_expired')
        return { result: 'lease_expired', booking, value: outcome.value };
      throw new AccountingClientError('rejected', `confirm of ${booking}: ${confirmed.error}`);
    }
    return { result: 'confirmed', booking, value: outcome.value };
  }

  /** Send these ops as they are (no coalescing); 503s are retried as a whole. */
  async batch(ops: BatchOp[]): Promise<BatchEntry[]> {
    const answer = await this.requestRetrying<{ results: BatchEntry[] }>('POST', '/v1/batch', { ops });
    return this.expectOk('POST', '/v1/batch', answer).results;
  }

  // ---- reads and operator calls -----------------------------------------------------------

  /** `GET /v1/status`. */
  status(): Promise<StatusResponse> {
    return this.getJson<StatusResponse>('/v1/status');
  }

  /** `GET /v1/state` with its optional query (vertex, show, top, sort, and whatever else the daemon accepts). */
  state(query: Query = {}): Promise<StateResponse> {
    return this.getJson<StateResponse>('/v1/state', query);
  }

  /** `GET /v1/openapi.json`: the daemon's OpenAPI 3.1 document. */
  openapi(): Promise<Record<string, unknown>> {
    return this.getJson('/v1/openapi.json');
  }

  /** `POST /v1/admin/<action>`: answers when the pass is done, hence the long default deadline. */
  admin(action: AdminAction, timeoutMs = 5 * 60_000): Promise<{ result: 'done'; duration_ms: number }> {
    return this.postJson(`/v1/admin/${action}`, undefined, timeoutMs);
  }

  /** GET and return the body; a non-2xx status is an error. */
  async getJson<T = unknown>(path: string, query?: Query): Promise<T> {
    return this.expectOk('GET', path, await this.request<T>('GET', path, query ? { query } : {}));
  }

  /** POST (JSON body) and return the body; a non-2xx status is an error. */
  async postJson<T = unknown>(path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    const options: { body?: unknown; timeoutMs?: number } = {};
    if (body !== undefined) options.body = body;
    if (timeoutMs !== undefined) options.timeoutMs = timeoutMs;
    return this.expectOk('POST', path, await this.request<T>('POST', path, options));
  }

  /**
   * One request, every status returned as is except 401 (kind `unauthorized`); transport
   * failures reject with kind `unreachable`. No retry: for the operator calls.
   */
  async request<T = unknown>(
    method: 'GET' | 'POST',
    path: string,
    options: { body?: unknown; query?: Query; timeoutMs?: number } = {},
  ): Promise<RawAnswer<T>> {
    const answer = await this.transport.request<T>(method, path, options);
    if (answer.status === 401) {
      throw new AccountingClientError(
        'unauthorized',
        this.transport.hasToken
          ? `daemon at ${this.describe} rejected the token (HTTP 401)`
          : `daemon at ${this.describe} requires a token (HTTP 401): pass --token or set CUEACCT_TOKEN`,
        { status: 401 },
      );
    }
    return answer;
  }

  /** Stop: pending calls reject, idle connections close. */
  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const pending = this.queue;
    this.queue = [];
    for (const p of pending) p.reject(new AccountingClientError('unreachable', 'client closed'));
    this.transport.close();
  }

  // ---- micro-batching ---------------------------------------------------------------------

  private async settle(
    how: 'confirm' | 'rollback',
    booking: string,
  ): Promise<ConfirmResponse | RollbackResponse> {
    const entry = await this.enqueue({ op: how, booking });
    if (entry.status === 200 || entry.status === 404) {
      return withoutStatus(entry) as unknown as ConfirmResponse | RollbackResponse;
    }
    throw this.entryError(how, entry);
  }

  private enqueue(op: BatchOp): Promise<BatchEntry> {
    if (this.closed) return Promise.reject(new AccountingClientError('unreachable', 'client closed'));
    return new Promise<BatchEntry>((resolve, reject) => {
      this.queue.push({ op, tries: 0, resolve, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.queue.length === 0) return;
    this.flushScheduled = true;
    // setImmediate, not a timer: every call made in this turn of the event loop (and in the
    // I/O callbacks of the same turn) joins the batch, and none waits a timer's millisecond.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const chunk = this.queue.splice(0, this.maxBatchOps);
      this.inFlight++;
      this.send(chunk).finally(() => {
        this.inFlight--;
        // Calls that queued while the wire was full leave now, together.
        this.scheduleFlush();
      });
    }
  }

  private async send(chunk: Pending[]): Promise<void> {
    this.stats.batches++;
    this.stats.ops += chunk.length;
    let answer: RawAnswer<{ results?: BatchEntry[] }>;
    try {
      answer = await this.request('POST', '/v1/batch', { body: { ops: chunk.map((p) => p.op) } });
    } catch (err) {
      for (const p of chunk) p.reject(err);
      return;
    }
    if (answer.status === 503) {
      // Nothing in the batch was applied: every op goes back for another try.
      for (const p of chunk) this.retryLater(p, answer.retryAfterS, answer.body);
      return;
    }
    const results = answer.body?.results;
    if (answer.status !== 200 || !Array.isArray(results) || results.length !== chunk.length) {
      const err = this.statusError('POST', '/v1/batch', answer);
      for (const p of chunk) p.reject(err);
      return;
    }
    for (let i = 0; i < chunk.length; i++) {
      const entry = results[i]!;
      if (entry.status === 503) this.retryLater(chunk[i]!, numberOrUndefined(entry.retry_after_s), entry);
      else chunk[i]!.resolve(entry);
    }
  }

  private retryLater(p: Pending, retryAfterS: number | undefined, body: unknown): void {
    p.tries++;
    if (p.tries >= this.retryPolicy.attempts) {
      p.reject(
        new AccountingClientError(
          'unavailable',
          `daemon at ${this.describe} answered ${p.op.op} with HTTP 503 ${this.retryPolicy.attempts} times${reasonOf(body)}`,
          { status: 503, body },
        ),
      );
      return;
    }
    this.stats.retries++;
    const delay = Math.max(this.backoffMs(p.tries), (retryAfterS ?? 0) * 1000);
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.closed) {
        p.reject(new AccountingClientError('unreachable', 'client closed'));
        return;
      }
      this.queue.push(p);
      this.scheduleFlush();
    }, delay);
    this.timers.add(timer);
  }

  private backoffMs(tries: number): number {
    const { baseDelayMs, maxDelayMs } = this.retryPolicy;
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (tries - 1));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  private async requestRetrying<T>(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
  ): Promise<RawAnswer<T>> {
    for (let tries = 1; ; tries++) {
      const answer = await this.request<T>(method, path, { body });
      if (answer.status !== 503 || tries >= this.retryPolicy.attempts) return answer;
      this.stats.retries++;
      const delay = Math.max(this.backoffMs(tries), (answer.retryAfterS ?? 0) * 1000);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  private expectOk<T>(method: string, path: string, answer: RawAnswer<T>): T {
    if (answer.status >= 200 && answer.status < 300) return answer.body;
    throw this.statusError(method, path, answer);
  }

  private statusError(method: string, path: string, answer: RawAnswer<unknown>): AccountingClientError {
    return new AccountingClientError(
      answer.status === 503 ? 'unavailable' : 'rejected',
      `daemon at ${this.describe} answered ${method} ${path} with HTTP ${answer.status}${reasonOf(answer.body)}`,
      { status: answer.status, body: answer.body },
    );
  }

  private entryError(op: string, entry: BatchEntry): AccountingClientError {
    return new AccountingClientError(
      entry.status === 503 ? 'unavailable' : 'rejected',
      `daemon at ${this.describe} answered ${op} with HTTP ${entry.status}${reasonOf(entry)}`,
      { status: entry.status, body: entry },
    );
  }
}

function withoutStatus(entry: BatchEntry): Record<string, unknown> {
  const { status: _status, ...body } = entry;
  return body;
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/** `: error: message` from an error body, or nothing. */
function reasonOf(body: unknown): string {
  const b = body as { error?: unknown; message?: unknown } | undefined;
  const parts = [b?.error, b?.message].filter((v) => typeof v === 'string' && v !== '');
  return parts.length === 0 ? '' : `: ${parts.join(': ')}`;
}
