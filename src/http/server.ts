/**
 * The daemon's HTTP API (SPEC §3) on plain `node:http` with a small hand router: JSON in and
 * out, strict validation, bearer auth, a 1 MiB body limit, keep-alive, TCP or a Unix socket,
 * and a graceful close with a deadline. Why no framework: see docs/api.md.
 *
 * The booking endpoints call the synchronous {@link BookingService} methods: each booking,
 * confirm or rollback is one critical section of the store, also inside a batch.
 */
import { once } from 'node:events';
import { chmod, lstat, unlink } from 'node:fs/promises';
import http from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Duplex } from 'node:stream';

import type { Logger } from 'pino';

import type { ConfirmResponse, RollbackResponse } from '../api/types.js';
import { redactText } from '../cli/redact.js';
import type { BookingRequest, LimitTable } from '../core/types.js';
import type { Metrics } from '../observability/metrics.js';
import type { BookingService, BookResult } from '../service/types.js';
import { bearerChecker } from './auth.js';
import { openApiDocument } from './openapi.js';
import {
  MAX_BATCH_OPS,
  parseBatch,
  parseBook,
  parseDrainShow,
  parseSettle,
  parseStateQuery,
  parseUndrainShow,
} from './schemas.js';
import { parseVertexQuery } from './vertex-query.js';

export { MAX_BATCH_OPS } from './schemas.js';

/** Largest accepted request body. */
export const MAX_BODY_BYTES = 1024 * 1024;
/** Past the body limit, read and discard up to this much more before answering 413 (see readBody). */
export const DRAIN_BYTES = 32 * 1024 * 1024;
/** …and for at most this long. */
const DRAIN_MS = 10_000;
/** Idle keep-alive connections are closed after this; longer than the usual 60 s of proxies and clients. */
export const KEEP_ALIVE_TIMEOUT_MS = 65_000;

export interface HttpServerOptions {
  service: BookingService;
  metrics: Metrics;
  logger: Logger;
  /** Bearer token; when set, every path but `/healthz` needs it. Empty is refused (throws). */
  token?: string;
  /** Daemon version, reported by `/v1/status` when the service leaves it empty. */
  version: string;
  /** Override {@link MAX_BODY_BYTES} (tests). */
  maxBodyBytes?: number;
  /** Override {@link MAX_BATCH_OPS}. */
  maxBatchOps?: number;
}

export type ListenTarget = { host: string; port: number } | { socket: string };

export interface HttpServer {
  readonly server: http.Server;
  /** Start listening; resolves with `http://host:port` or `unix:/path`. */
  listen(target: ListenTarget): Promise<string>;
  /**
   * Stop accepting connections, let in-flight requests finish for up to `deadlineMs`, then
   * destroy the connections that remain. Idempotent.
   */
  close(deadlineMs: number): Promise<void>;
}

/** A handler's answer: HTTP status and JSON body. */
interface Reply {
  status: number;
  body: unknown;
}

type Handler = (req: IncomingMessage, res: ServerResponse, query: string) => void | Promise<void>;

interface Route {
  method: 'GET' | 'POST';
  handler: Handler;
}

/** Thrown while reading a request; answered as is. */
class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message?: string,
  ) {
    super(message ?? code);
  }
}

const JSON_TYPE = 'application/json; charset=utf-8';
const BOOK_TABLES: readonly LimitTable[] = ['subscription', 'folder', 'job', 'folder_gpus', 'job_gpus'];

/** Booking outcomes of one request, counted in `cueacct_bookings_total` in one place. */
class BookTally {
  applied = 0;
  notManaged = 0;
  notReady = 0;
  draining = 0;
  readonly limit = new Map<LimitTable, number>();
  /** Refusals before any cap check (unknown key, wrong path, resolving), by error. */
  readonly refused = new Map<string, number>();
}

function isJsonContentType(value: string): boolean {
  const semi = value.indexOf(';');
  const type = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  return type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'));
}

/**
 * A booking outcome as an entry of a batch result: the status first, then the body the
 * single endpoint answers ({@link bookReply}). Built as one object: a batch allocates no
 * reply plus spread per op.
 */
type BatchEntry = { status: number } & Record<string, unknown>;

function bookEntry(result: BookResult, tally: BookTally): BatchEntry {
  if ('error' in result) return refusalEntry(result, tally);
  switch (result.result) {
    case 'applied':
      tally.applied++;
      return {
        status: 200,
        result: 'applied',
        booking: result.booking,
        lease_expires_at: result.lease_expires_at,
        insert_deadline: result.insert_deadline,
      };
    case 'not_managed':
      tally.notManaged++;
      return { status: 200, result: 'not_managed' };
    case 'show_draining':
      tally.draining++;
      return { status: 409, result: 'show_draining', show: result.show, reason: result.reason };
    case 'limit_exceeded':
      tally.limit.set(result.table, (tally.limit.get(result.table) ?? 0) + 1);
      return {
        status: 409,
        result: 'limit_exceeded',
        table: result.table,
        current: result.current,
        limit: result.limit,
      };
    default: {
      const unexpected: never = result;
      throw new Error(`unexpected book result ${JSON.stringify(unexpected)}`);
    }
  }
}

/** A booking refused before any cap was checked: not ready, resolving (503), unknown key (404), wrong path (409). */
function refusalEntry(result: Extract<BookResult, { error: string }>, tally: BookTally): BatchEntry {
  switch (result.error) {
    case 'not_ready':
      tally.notReady++;
      return { status: 503, error: 'not_ready' };
    case 'resolving':
      tally.refused.set(result.error, (tally.refused.get(result.error) ?? 0) + 1);
      return { status: 503, ...result };
    case 'unknown_job':
    case 'unknown_folder':
    case 'unknown_subscription':
      tally.refused.set(result.error, (tally.refused.get(result.error) ?? 0) + 1);
      return { status: 404, ...result };
    case 'wrong_folder':
    case 'wrong_show':
      tally.refused.set(result.error, (tally.refused.get(result.error) ?? 0) + 1);
      return { status: 409, ...result };
    default: {
      const unexpected: never = result;
      throw new Error(`unexpected book refusal ${JSON.stringify(unexpected)}`);
    }
  }
}

function settleEntry(result: ConfirmResponse | RollbackResponse): BatchEntry {
  if ('error' in result) return { status: 404, error: result.error };
  return { status: 200, result: result.result };
}

/** The single-endpoint answer for a booking outcome: its batch entry without the status. */
function bookReply(result: BookResult, tally: BookTally): Reply {
  const { status, ...body } = bookEntry(result, tally);
  return { status, body };
}

function settleReply(result: ConfirmResponse | RollbackResponse): Reply {
  const { status, ...body } = settleEntry(result);
  return { status, body };
}

export function createHttpServer(options: HttpServerOptions): HttpServer {
  return new ApiServer(options);
}

class ApiServer implements HttpServer {
  readonly server: http.Server;
  private readonly service: BookingService;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private readonly version: string;
  private readonly token: string | undefined;
  private readonly authorized: ((header: string | undefined) => boolean) | undefined;
  private readonly maxBodyBytes: number;
  private readonly maxBatchOps: number;
  private readonly routes: Map<string, Route>;
  private openApi: Record<string, unknown> | undefined;
  private readonly sockets = new Set<Duplex>();
  private closing = false;
  private closed: Promise<void> | undefined;

  constructor(options: HttpServerOptions) {
    this.service = options.service;
    this.metrics = options.metrics;
    this.log = options.logger.child({ component: 'http' });
    this.version = options.version;
    // An empty token must never mean "no auth" (serve refuses it; see src/cli/auth-choice.ts).
    if (options.token !== undefined && options.token.trim() === '') throw new Error('empty bearer token');
    this.token = options.token;
    this.authorized = this.token === undefined ? undefined : bearerChecker(this.token);
    this.maxBodyBytes = options.maxBodyBytes ?? MAX_BODY_BYTES;
    this.maxBatchOps = options.maxBatchOps ?? MAX_BATCH_OPS;
    this.routes = new Map<string, Route>([
      ['/v1/book', { method: 'POST', handler: (req, res) => this.book(req, res) }],
      ['/v1/confirm', { method: 'POST', handler: (req, res) => this.settle(req, res, 'confirm') }],
      ['/v1/rollback', { method: 'POST', handler: (req, res) => this.settle(req, res, 'rollback') }],
      ['/v1/batch', { method: 'POST', handler: (req, res) => this.batch(req, res) }],
      ['/v1/state', { method: 'GET', handler: (req, res, query) => this.state(req, res, query) }],
      ['/v1/status', { method: 'GET', handler: (req, res) => this.status(req, res) }],
      ['/v1/vertex', { method: 'GET', handler: (req, res, query) => this.vertex(req, res, query) }],
      ['/v1/admin/recompute', { method: 'POST', handler: (req, res) => this.admin(req, res, 'recompute') }],
      ['/v1/admin/reseed', { method: 'POST', handler: (req, res) => this.admin(req, res, 'reseed') }],
      [
        '/v1/admin/refresh-shows',
        { method: 'POST', handler: (req, res) => this.admin(req, res, 'refreshShows') },
      ],
      ['/v1/admin/drain-show', { method: 'POST', handler: (req, res) => this.drainShow(req, res) }],
      ['/v1/admin/undrain-show', { method: 'POST', handler: (req, res) => this.undrainShow(req, res) }],
      ['/v1/openapi.json', { method: 'GET', handler: (req, res) => this.openapi(req, res) }],
      ['/readyz', { method: 'GET', handler: (req, res) => this.readyz(req, res) }],
      ['/metrics', { method: 'GET', handler: (req, res) => this.metricsText(req, res) }],
    ]);

    this.server = http.createServer(
      {
        keepAlive: true,
        keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
        headersTimeout: KEEP_ALIVE_TIMEOUT_MS + 1_000,
        requestTimeout: 120_000,
        noDelay: true,
      },
      (req, res) => this.onRequest(req, res),
    );
    this.server.on('connection', (socket: Duplex) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    // `Expect: 100-continue`: refuse an oversized body before the client sends it.
    this.server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      const declared = req.headers['content-length'];
      if (declared !== undefined && Number(declared) > this.maxBodyBytes) {
        const err = tooLarge(this.maxBodyBytes);
        this.send(req, res, err.status, { error: err.code, message: err.message }, true);
        return;
      }
      res.writeContinue();
      this.onRequest(req, res);
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) =>
      this.onClientError(err, socket),
    );
  }

  // ---- lifecycle --------------------------------------------------------------------------

  async listen(target: ListenTarget): Promise<string> {
    if ('socket' in target) {
      await removeStaleSocket(target.socket);
      // Bind with a 0600 umask so the socket is never reachable by others, not even briefly;
      // the chmod below covers runtimes where the umask cannot be changed (worker threads).
      let previous: number | undefined;
      try {
        previous = process.umask(0o177);
      } catch {
        previous = undefined;
      }
      try {
        await this.bind(() => this.server.listen(target.socket));
      } finally {
        if (previous !== undefined) process.umask(previous);
      }
      await chmod(target.socket, 0o600);
      const address = `unix:${target.socket}`;
      this.log.info({ address, version: this.version, auth: this.token !== undefined }, 'HTTP API listening');
      return address;
    }
    await this.bind(() => this.server.listen(target.port, target.host));
    const bound = this.server.address() as net.AddressInfo;
    const host = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
    const address = `http://${host}:${bound.port}`;
    this.log.info({ address, version: this.version, auth: this.token !== undefined }, 'HTTP API listening');
    return address;
  }

  private async bind(start: () => void): Promise<void> {
    const listening = once(this.server, 'listening');
    start();
    await listening; // rejects with the 'error' event (EADDRINUSE, EACCES)
  }

  close(deadlineMs: number): Promise<void> {
    this.closed ??= this.shutdown(deadlineMs);
    return this.closed;
  }

  private async shutdown(deadlineMs: number): Promise<void> {
    this.closing = true;
    const started = performance.now();
    const done = new Promise<void>((resolve) => {
      if (!this.server.listening) {
        resolve();
        return;
      }
      this.server.close(() => resolve());
    });
    // Idle keep-alive connections go now; busy ones answer with `Connection: close`.
    this.server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => {
      timer = setTimeout(() => resolve('deadline'), Math.max(0, deadlineMs));
    });
    const outcome = await Promise.race([done.then(() => 'done' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'deadline') {
      const remaining = this.sockets.size;
      for (const socket of this.sockets) socket.destroy();
      this.sockets.clear();
      if (remaining > 0) {
        this.log.warn(
          { connections: remaining, deadline_ms: deadlineMs },
          'HTTP close deadline: connections destroyed',
        );
      }
      await done;
    }
    this.log.info({ duration_ms: Math.round(performance.now() - started) }, 'HTTP API closed');
  }

  // ---- dispatch ---------------------------------------------------------------------------

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';

    if (path === '/healthz') {
      if (method === 'GET' || method === 'HEAD') this.send(req, res, 200, { status: 'ok' });
      else this.methodNotAllowed(req, res, 'GET');
      return;
    }
    if (this.authorized !== undefined && !this.authorized(req.headers.authorization)) {
      res.setHeader('www-authenticate', 'Bearer realm="cueacct"');
      this.send(req, res, 401, { error: 'unauthorized' });
      return;
    }
    const route = this.routes.get(path);
    if (route === undefined) {
      this.send(req, res, 404, { error: 'not_found' });
      return;
    }
    if (method !== route.method && !(method === 'HEAD' && route.method === 'GET')) {
      this.methodNotAllowed(req, res, route.method);
      return;
    }
    try {
      const pending = route.handler(req, res, q < 0 ? '' : url.slice(q + 1));
      if (pending !== undefined) pending.catch((err: unknown) => this.fail(req, res, err));
    } catch (err) {
      this.fail(req, res, err);
    }
  }

  private methodNotAllowed(req: IncomingMessage, res: ServerResponse, allowed: 'GET' | 'POST'): void {
    res.setHeader('allow', allowed === 'GET' ? 'GET, HEAD' : 'POST');
    this.send(req, res, 405, {
      error: 'method_not_allowed',
      message: `${req.method} ${pathOf(req)}: use ${allowed}`,
    });
  }

  // ---- handlers ---------------------------------------------------------------------------

  private async book(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.readJson(req, res);
    if (body === undefined) return;
    const request = parseBook(body);
    if (!request.ok) {
      this.badRequest(req, res, request.message);
      return;
    }
    const tally = new BookTally();
    let reply: Reply;
    try {
      const outcome = this.service.book(request.value);
      // Only a booking of a key the store must first read awaits; the fast path stays sync.
      reply = bookReply(outcome instanceof Promise ? await outcome : outcome, tally);
    } finally {
      this.count(tally);
    }
    this.retryAfter(res, reply.body);
    this.send(req, res, reply.status, reply.body);
  }

  /** A retryable `resolving` answer tells the client when to retry (whole seconds, at least 1). */
  private retryAfter(res: ServerResponse, body: unknown): void {
    const { error, retry_after_ms: ms } = body as { error?: string; retry_after_ms?: number };
    if (error === 'resolving' && typeof ms === 'number')
      res.setHeader('retry-after', Math.max(1, Math.ceil(ms / 1000)));
  }

  private async settle(
    req: IncomingMessage,
    res: ServerResponse,
    how: 'confirm' | 'rollback',
  ): Promise<void> {
    const body = await this.readJson(req, res);
    if (body === undefined) return;
    const request = parseSettle(body);
    if (!request.ok) {
      this.badRequest(req, res, request.message);
      return;
    }
    const result =
      how === 'confirm'
        ? this.service.confirm(request.value.booking)
        : this.service.rollback(request.value.booking);
    const reply = settleReply(result);
    this.send(req, res, reply.status, reply.body);
  }

  private async batch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.readJson(req, res);
    if (body === undefined) return;
    const parsed = parseBatch(body, this.maxBatchOps);
    if (!parsed.ok) {
      this.badRequest(req, res, parsed.message);
      return;
    }
    const ops = parsed.value;
    const results = new Array<BatchEntry>(ops.length);
    const tally = new BookTally();
    // Keys the store does not know are read once for the whole batch, before any op runs;
    // then every op is answered in order, each its own critical section, without waiting.
    const reading = this.service.prepare?.(bookRequestsOf(ops));
    const wait = reading === undefined;
    if (reading !== undefined) await reading;
    try {
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i]!;
        let entry: BatchEntry;
        try {
          if (op.op === 'book') {
            const outcome = this.service.book(toBookingRequest(op), wait);
            entry = bookEntry(outcome instanceof Promise ? await outcome : outcome, tally);
          } else if (op.op === 'confirm') entry = settleEntry(this.service.confirm(op.booking));
          else entry = settleEntry(this.service.rollback(op.booking));
        } catch (err) {
          // One failing op must not hide the answers (booking ids) of the others.
          this.log.error({ err: this.scrub(err), op: op.op, index: i }, 'batch op failed');
          entry = { status: 500, error: 'internal_error' };
        }
        results[i] = entry;
      }
    } finally {
      this.count(tally);
    }
    this.send(req, res, 200, { results });
  }

  private async state(req: IncomingMessage, res: ServerResponse, query: string): Promise<void> {
    const parsed = parseStateQuery(new URLSearchParams(query));
    if (!parsed.ok) {
      this.badRequest(req, res, parsed.message);
      return;
    }
    this.send(req, res, 200, await this.service.state(parsed.value));
  }

  /** `GET /v1/vertex?kind=&key=`: one vertex with the caps in its path and its history. */
  private async vertex(req: IncomingMessage, res: ServerResponse, query: string): Promise<void> {
    const parsed = parseVertexQuery(new URLSearchParams(query));
    if (!parsed.ok) {
      this.badRequest(req, res, parsed.message);
      return;
    }
    const detail = await this.service.vertexDetail?.(parsed.value.kind, parsed.value.key);
    if (detail === undefined) this.send(req, res, 404, { error: 'unknown_vertex' });
    else this.send(req, res, 200, detail);
  }

  private status(req: IncomingMessage, res: ServerResponse): void {
    const status = this.service.status();
    this.send(req, res, 200, status.version ? status : { ...status, version: this.version });
  }

  private async admin(
    req: IncomingMessage,
    res: ServerResponse,
    pass: 'recompute' | 'reseed' | 'refreshShows',
  ): Promise<void> {
    const body = await this.readJson(req, res, true);
    if (body === undefined) return;
    if (body !== null && !(isPlainObject(body) && Object.keys(body).length === 0)) {
      const extra = isPlainObject(body)
        ? `${Object.keys(body)[0]}: unexpected field`
        : 'body: expected no body or {}';
      this.badRequest(req, res, extra);
      return;
    }
    const started = performance.now();
    try {
      await this.service[pass]();
    } catch (err) {
      const message = redactText(err instanceof Error ? err.message : String(err), [this.token]);
      this.log.error({ err: this.scrub(err), pass }, 'admin pass failed');
      this.send(req, res, 500, { error: 'pass_failed', message }, true);
      return;
    }
    this.send(req, res, 200, { result: 'done', duration_ms: Math.round(performance.now() - started) });
  }

  /** Phase one of a flip to Cuebot: answers when nothing of the show is in flight, or 409 `drain_timeout`. */
  private async drainShow(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.readJson(req, res);
    if (body === undefined) return;
    const parsed = parseDrainShow(body);
    if (!parsed.ok) {
      this.badRequest(req, res, parsed.message);
      return;
    }
    if (this.service.drainShow === undefined) {
      this.send(req, res, 404, { error: 'not_found' });
      return;
    }
    const result = await this.service.drainShow(parsed.value.show, parsed.value.timeout_ms);
    if ('error' in result) {
      this.send(req, res, 409, {
        ...result,
        message: `${result.inflight} booking(s) of show ${result.show} still in flight after ${parsed.value.timeout_ms} ms; drain lifted`,
      });
      return;
    }
    this.send(req, res, 200, result);
  }

  private async undrainShow(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.readJson(req, res);
    if (body === undefined) return;
    const parsed = parseUndrainShow(body);
    if (!parsed.ok) {
      this.badRequest(req, res, parsed.message);
      return;
    }
    if (this.service.undrainShow === undefined) {
      this.send(req, res, 404, { error: 'not_found' });
      return;
    }
    this.send(req, res, 200, this.service.undrainShow(parsed.value.show));
  }

  /** The OpenAPI 3.1 document (src/http/openapi.ts), built once on first request. */
  private openapi(req: IncomingMessage, res: ServerResponse): void {
    this.openApi ??= openApiDocument(this.version);
    this.send(req, res, 200, this.openApi);
  }

  private readyz(req: IncomingMessage, res: ServerResponse): void {
    if (this.service.ready) this.send(req, res, 200, { status: 'ready' });
    else this.send(req, res, 503, { error: 'not_ready' });
  }

  private async metricsText(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const text = await this.metrics.registry.metrics();
    if (res.headersSent) return;
    res.writeHead(200, {
      'content-type': this.metrics.registry.contentType,
      'content-length': Buffer.byteLength(text),
      ...(this.mustClose(req, false) ? { connection: 'close' } : {}),
    });
    res.end(text);
  }

  // ---- bodies -----------------------------------------------------------------------------

  /**
   * Read and parse a JSON body. Answers the error itself (400, 413, 415) and resolves
   * `undefined` then; an empty body is `null` when `allowEmpty`, else a 400.
   */
  private async readJson(req: IncomingMessage, res: ServerResponse, allowEmpty = false): Promise<unknown> {
    const type = req.headers['content-type'];
    if (type !== undefined && !isJsonContentType(type) && hasBody(req)) {
      this.send(req, res, 415, {
        error: 'unsupported_media_type',
        message: 'content-type: expected application/json',
      });
      return undefined;
    }
    let raw: Buffer;
    try {
      raw = await this.readBody(req);
    } catch (err) {
      if (err instanceof HttpError) {
        this.send(req, res, err.status, { error: err.code, message: err.message }, err.status === 413);
      }
      // else: the client went away; there is nobody to answer.
      return undefined;
    }
    if (raw.length === 0) {
      if (allowEmpty) return null;
      this.badRequest(req, res, 'body: missing (expected a JSON object)');
      return undefined;
    }
    try {
      return JSON.parse(raw.toString('utf8')) as unknown;
    } catch {
      this.badRequest(req, res, 'body: not valid JSON');
      return undefined;
    }
  }

  /**
   * Collect the body up to the limit. Past it, stop buffering but read on and discard the rest
   * (up to {@link DRAIN_BYTES} more, for at most {@link DRAIN_MS}), then fail with 413: closing
   * a connection with unread data makes TCP send a reset, and the client would lose the 413
   * it was about to read (a chunked upload usually did).
   */
  private readBody(req: IncomingMessage): Promise<Buffer> {
    const limit = this.maxBodyBytes;
    const declared = req.headers['content-length'];
    if (declared !== undefined && Number(declared) > limit + DRAIN_BYTES) {
      return Promise.reject(tooLarge(limit)); // not worth reading: answer at once
    }
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      let draining: NodeJS.Timeout | undefined;
      const finish = (err: Error | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(draining);
        req.off('data', onData);
        req.off('end', onEnd);
        req.off('error', onError);
        req.off('close', onClose);
        if (err === undefined) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
        else reject(err);
      };
      const drain = (): void => {
        chunks.length = 0;
        draining = setTimeout(() => finish(tooLarge(limit)), DRAIN_MS);
      };
      const onData = (chunk: Buffer): void => {
        size += chunk.length;
        if (draining !== undefined) {
          if (size > limit + DRAIN_BYTES) finish(tooLarge(limit));
          return;
        }
        if (size > limit) {
          drain();
          return;
        }
        chunks.push(chunk);
      };
      const onEnd = (): void => finish(draining === undefined ? undefined : tooLarge(limit));
      const onError = (err: Error): void => finish(err);
      const onClose = (): void => finish(new Error('request aborted'));
      req.on('data', onData);
      req.on('end', onEnd);
      req.on('error', onError);
      req.on('close', onClose);
      if (declared !== undefined && Number(declared) > limit) drain();
    });
  }

  // ---- answers ----------------------------------------------------------------------------

  private send(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    body: unknown,
    close = false,
  ): void {
    if (res.headersSent) return;
    const text = JSON.stringify(body);
    const headers: OutgoingHttpHeaders = {
      'content-type': JSON_TYPE,
      'content-length': Buffer.byteLength(text),
    };
    if (this.mustClose(req, close)) headers.connection = 'close';
    res.writeHead(status, headers);
    res.end(text);
    if (status >= 400) this.logAnswer(req, status, body);
    if (this.closing) setImmediate(() => this.server.closeIdleConnections());
  }

  /**
   * Close the connection after this answer when asked, when shutting down, or when the
   * request's body was not read and is large or of unknown length (a 401, a 404, a GET with a
   * chunked body): Node would otherwise read and discard all of it to keep the connection.
   */
  private mustClose(req: IncomingMessage, close: boolean): boolean {
    if (close || this.closing) return true;
    if (req.complete) return false;
    const declared = req.headers['content-length'];
    return (
      req.headers['transfer-encoding'] !== undefined ||
      (declared !== undefined && Number(declared) > this.maxBodyBytes)
    );
  }

  private badRequest(req: IncomingMessage, res: ServerResponse, message: string): void {
    this.send(req, res, 400, { error: 'bad_request', message });
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    this.log.error({ err: this.scrub(err), method: req.method, path: pathOf(req) }, 'request failed');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    this.send(req, res, 500, { error: 'internal_error' }, true);
  }

  /** 5xx at error, 4xx at debug; never bodies or headers (they may carry the token). */
  private logAnswer(req: IncomingMessage, status: number, body: unknown): void {
    const { error, message } = body as { error?: string; message?: string };
    if (status >= 500) {
      this.log.error(
        { method: req.method, path: pathOf(req), status, error, message },
        'request answered with an error',
      );
    } else if (this.log.isLevelEnabled('debug')) {
      this.log.debug({ method: req.method, path: pathOf(req), status, error, message }, 'request rejected');
    }
  }

  /** An error for the log with connection passwords and the token removed, whatever the logger's serializers. */
  private scrub(err: unknown): unknown {
    if (!(err instanceof Error)) return redactText(String(err), [this.token]);
    const secrets = [this.token];
    return {
      type: err.name,
      message: redactText(err.message, secrets),
      ...(err.stack !== undefined ? { stack: redactText(err.stack, secrets) } : {}),
      ...(typeof (err as NodeJS.ErrnoException).code === 'string'
        ? { code: (err as NodeJS.ErrnoException).code }
        : {}),
    };
  }

  private count(tally: BookTally): void {
    const bookings = this.metrics.bookings;
    if (tally.applied > 0) bookings.inc({ result: 'applied', table: '' }, tally.applied);
    if (tally.notManaged > 0) bookings.inc({ result: 'not_managed', table: '' }, tally.notManaged);
    if (tally.notReady > 0) bookings.inc({ result: 'not_ready', table: '' }, tally.notReady);
    for (const [error, n] of tally.refused) bookings.inc({ result: error, table: '' }, n);
    if (tally.draining > 0) bookings.inc({ result: 'show_draining', table: '' }, tally.draining);
    if (tally.limit.size > 0) {
      for (const table of BOOK_TABLES) {
        const n = tally.limit.get(table);
        if (n !== undefined) bookings.inc({ result: 'limit_exceeded', table }, n);
      }
    }
  }

  private onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const code = status === 431 ? 'headers_too_large' : status === 408 ? 'request_timeout' : 'bad_request';
    const text = JSON.stringify({ error: code, message: 'malformed HTTP request' });
    this.log.debug({ code: err.code, status }, 'malformed HTTP request');
    socket.end(
      `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: ${JSON_TYPE}\r\n` +
        `content-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
    );
  }
}

/** The bookings of a batch, only when a service reads unknown keys ahead (no copy otherwise). */
function bookRequestsOf(ops: readonly ({ op: string } & Partial<BookingRequest>)[]): BookingRequest[] {
  const requests: BookingRequest[] = [];
  for (const op of ops) if (op.op === 'book') requests.push(op as BookingRequest);
  return requests;
}

function toBookingRequest(op: BookingRequest & { op: 'book' }): BookingRequest {
  return { show: op.show, alloc: op.alloc, folder: op.folder, job: op.job, cores: op.cores, gpus: op.gpus };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The request declares a body: a non-zero length, or chunked. */
function hasBody(req: IncomingMessage): boolean {
  const declared = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (declared !== undefined && declared !== '0');
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'payload_too_large', `body: larger than ${limit} bytes`);
}

/**
 * Remove a socket file left by a process that died. A path that is not a socket, or a socket
 * some process still answers on, is left alone and fails the listen.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let stat;
  try {
    stat = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!stat.isSocket()) {
    throw Object.assign(new Error(`${path} exists and is not a socket; not removing it`), { code: 'EEXIST' });
  }
  const inUse = await new Promise<boolean>((resolve) => {
    const probe = net.connect(path);
    const timer = setTimeout(() => {
      probe.destroy();
      resolve(true); // something holds it but does not answer: leave it
    }, 1_000);
    probe.once('connect', () => {
      clearTimeout(timer);
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
  });
  if (inUse) {
    throw Object.assign(new Error(`${path}: another process is listening on this socket`), {
      code: 'EADDRINUSE',
    });
  }
  await unlink(path);
}
