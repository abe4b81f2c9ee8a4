/**
 * The CLI's client for the daemon's HTTP API (SPEC §3): `GET /v1/status`, `GET /v1/state`,
 * `POST /v1/admin/*`, over TCP (`http://host:port`, `https://…`) or a unix socket
 * (`unix:/path/to.sock`, or just an absolute path).
 *
 * The HTTP plumbing is the library's ({@link AccountingClient}, `src/client/`); this wrapper
 * only turns its failures into {@link CliError}s:
 * - cannot connect / timeout → exit 3: `cannot reach daemon at <url>: ECONNREFUSED`
 * - HTTP 401 → exit 2: `daemon at <url> rejected the token` (or asks for one)
 * - non-JSON answer, or a non-2xx status from {@link DaemonClient.getJson} /
 *   {@link DaemonClient.postJson} → exit 1
 * The token is never part of a message.
 */
import { AccountingClient } from '../client/client.js';
import {
  DEFAULT_DAEMON_URL,
  parseDaemonAddress as parseAddress,
  type DaemonAddress,
} from '../client/address.js';
import { AccountingClientError } from '../client/errors.js';
import { problemError, unreachableError, usageError } from './errors.js';
import { collectStatePages } from '../api/state-pages.js';
import type { StateResponse } from '../api/types.js';
import { STATE_PAGE_MAX } from '../service/types.js';
import { redactUrl } from './redact.js';

export { DEFAULT_DAEMON_URL, type DaemonAddress };
export const DEFAULT_DAEMON_TIMEOUT_MS = 10_000;
/** `stateAll` gives up past this many pages (10 M vertices): a daemon that never ends its pages. */
const MAX_STATE_PAGES = 2_000;

const describeUrl = (url: URL): string => redactUrl(url.href.replace(/\/$/, ''));

/**
 * Parse `--daemon`: `http(s)://host[:port][/prefix]`, `unix:/path`, `unix:///path` or `/path`.
 * Throws a usage error (exit 2) naming the problem.
 */
export function parseDaemonAddress(input: string): DaemonAddress {
  try {
    return parseAddress(input, describeUrl);
  } catch (err) {
    throw toCliError(err);
  }
}

export interface DaemonClientOptions {
  /** Daemon address (see {@link parseDaemonAddress}); default {@link DEFAULT_DAEMON_URL}. */
  url?: string;
  /** Bearer token sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Per-request deadline (connect + answer), default 10 s. */
  timeoutMs?: number;
}

export interface DaemonRequestOptions {
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined>;
  timeoutMs?: number;
}

export interface DaemonResponse<T = unknown> {
  status: number;
  /** Parsed JSON body; `undefined` for an empty body. */
  body: T;
}

/** Loosely typed: the daemon owns the shape of `/v1/status` (version, uptime, ready, …). */
export type DaemonStatus = Record<string, unknown>;
export type AdminAction = 'recompute' | 'reseed' | 'refresh-shows';

export class DaemonClient {
  readonly address: DaemonAddress;
  private readonly client: AccountingClient;

  constructor(options: DaemonClientOptions = {}) {
    this.address = parseDaemonAddress(options.url ?? DEFAULT_DAEMON_URL);
    this.client = new AccountingClient({
      url: options.url ?? DEFAULT_DAEMON_URL,
      ...(options.token === undefined ? {} : { token: options.token }),
      timeoutMs: options.timeoutMs ?? DEFAULT_DAEMON_TIMEOUT_MS,
      maxSockets: 1,
      describeUrl,
    });
  }

  /** The daemon address for messages (no credentials). */
  get describe(): string {
    return this.address.describe;
  }

  /**
   * Send one request and parse the JSON answer. Throws on transport failure (exit 3), on 401
   * (exit 2) and on a body that is not JSON (exit 1); every other status is returned as is.
   */
  async request<T = unknown>(
    method: 'GET' | 'POST',
    path: string,
    options: DaemonRequestOptions = {},
  ): Promise<DaemonResponse<T>> {
    const answer = await this.client.request<T>(method, path, options).catch((err: unknown) => {
      throw toCliError(err, `${method} ${path}`);
    });
    return { status: answer.status, body: answer.body };
  }

  /** GET and return the body; any non-2xx status is an error (exit 1). */
  async getJson<T = unknown>(path: string, query?: DaemonRequestOptions['query']): Promise<T> {
    return this.client.getJson<T>(path, query).catch((err: unknown) => {
      throw toCliError(err, `GET ${path}`);
    });
  }

  /** POST (JSON body) and return the body; any non-2xx status is an error (exit 1). */
  async postJson<T = unknown>(path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    return this.client.postJson<T>(path, body, timeoutMs).catch((err: unknown) => {
      throw toCliError(err, `POST ${path}`);
    });
  }

  /** `GET /v1/status`. */
  status(): Promise<DaemonStatus> {
    return this.getJson<DaemonStatus>('/v1/status');
  }

  /** One `GET /v1/state` answer (one page unless `top`) with the optional query. */
  state(
    query: {
      vertex?: string;
      show?: string;
      top?: number;
      sort?: string;
      limit?: number;
      cursor?: string;
    } = {},
  ): Promise<unknown> {
    return this.getJson('/v1/state', query);
  }

  /**
   * Every vertex matching `vertex`/`show`: `GET /v1/state` page after page, following
   * `next_cursor` (the pages are not one instant's snapshot: each row is as of its page). The
   * first request carries no paging parameter, so a daemon that does not page answers it whole.
   */
  stateAll(query: { vertex?: string; show?: string } = {}): Promise<StateResponse> {
    return collectStatePages((paging) => this.getJson<StateResponse>('/v1/state', { ...query, ...paging }), {
      limit: STATE_PAGE_MAX,
      maxPages: MAX_STATE_PAGES,
      tooMany: () =>
        problemError(`daemon at ${this.describe} answered more than ${MAX_STATE_PAGES} pages of /v1/state`),
    });
  }

  /** `GET /v1/vertex`: one vertex, the caps in its path and its history. */
  vertex(kind: string, key: string): Promise<unknown> {
    return this.getJson('/v1/vertex', { kind, key });
  }

  /** `POST /v1/admin/<action>`: the daemon answers when the pass is done, hence the longer default deadline. */
  admin(action: AdminAction, timeoutMs = 5 * 60_000): Promise<unknown> {
    return this.postJson(`/v1/admin/${action}`, undefined, timeoutMs);
  }

  /** Drop idle keep-alive connections (they never keep the process alive on their own). */
  close(): void {
    this.client.close();
  }
}

/** The library's error kinds as the CLI's exit codes (2 usage/token, 3 unreachable, 1 otherwise). */
function toCliError(err: unknown, detail?: string): unknown {
  if (!(err instanceof AccountingClientError)) return err;
  switch (err.kind) {
    case 'usage':
    case 'unauthorized':
      return usageError(err.message);
    case 'unreachable':
      return unreachableError(err.message, {
        ...(detail === undefined ? {} : { detail }),
        cause: err.cause ?? err,
      });
    default: {
      const body = err.details.body;
      return problemError(err.message, typeof body === 'string' ? { detail: body } : {});
    }
  }
}
