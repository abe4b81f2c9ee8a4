/**
 * A tiny JSON client for the daemon's HTTP API (SPEC §3): `GET /v1/status`, `GET /v1/state`,
 * `POST /v1/admin/*`, over TCP (`http://host:port`, `https://…`) or a unix socket
 * (`unix:/path/to.sock`, or just an absolute path).
 *
 * It uses `node:http` for both transports (one code path, no undici start-up cost, plain
 * `err.code`s). Failures become {@link CliError}s:
 * - cannot connect / timeout → exit 3: `cannot reach daemon at <url>: ECONNREFUSED`
 * - HTTP 401 → exit 2: `daemon at <url> rejected the token` (or asks for one)
 * - non-JSON answer, or a non-2xx status from {@link DaemonClient.getJson} /
 *   {@link DaemonClient.postJson} → exit 1
 * The token is never part of a message.
 */
import http from 'node:http';
import https from 'node:https';

import { CliError, problemError, unreachableError, usageError } from './errors.js';
import { collectStatePages } from '../api/state-pages.js';
import type { StateResponse } from '../api/types.js';
import { STATE_PAGE_MAX } from '../service/types.js';
import { redactUrl } from './redact.js';

export const DEFAULT_DAEMON_URL = 'http://127.0.0.1:7878';
export const DEFAULT_DAEMON_TIMEOUT_MS = 10_000;
/** Answers larger than this are refused (the daemon's own request limit is 1 MiB). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** `stateAll` gives up past this many pages (10 M vertices): a daemon that never ends its pages. */
const MAX_STATE_PAGES = 2_000;

export type DaemonAddress =
  { kind: 'http'; url: URL; describe: string } | { kind: 'unix'; socketPath: string; describe: string };

/**
 * Parse `--daemon`: `http(s)://host[:port][/prefix]`, `unix:/path`, `unix:///path` or `/path`.
 * Throws a usage error (exit 2) naming the problem.
 */
export function parseDaemonAddress(input: string): DaemonAddress {
  const value = input.trim();
  if (value === '') throw usageError('daemon address is empty');
  if (value.startsWith('unix:') || value.startsWith('/')) {
    const socketPath = value.startsWith('unix:')
      ? value.slice('unix:'.length).replace(/^\/\/(?=\/)/, '')
      : value;
    if (!socketPath.startsWith('/')) {
      throw usageError(`daemon socket path must be absolute (unix:/path/to.sock), got "${socketPath}"`);
    }
    return { kind: 'unix', socketPath, describe: `unix:${socketPath}` };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usageError('daemon address is not a valid URL (expected http://HOST:PORT or unix:/PATH)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`daemon address must use http:, https: or unix:, not ${url.protocol}`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw usageError('daemon address must not have a query string or fragment');
  }
  const describe = redactUrl(url.href.replace(/\/$/, ''));
  return { kind: 'http', url, describe };
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
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly agent: http.Agent;

  constructor(options: DaemonClientOptions = {}) {
    this.address = parseDaemonAddress(options.url ?? DEFAULT_DAEMON_URL);
    this.token = options.token === '' ? undefined : options.token;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_DAEMON_TIMEOUT_MS;
    const secure = this.address.kind === 'http' && this.address.url.protocol === 'https:';
    this.agent = secure ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
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
    const target = this.pathWithQuery(path, options.query);
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;

    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const base =
        this.address.kind === 'unix'
          ? { socketPath: this.address.socketPath, path: target }
          : {
              protocol: this.address.url.protocol,
              hostname: this.address.url.hostname.replace(/^\[(.*)\]$/, '$1'),
              port: this.address.url.port,
              path: target,
            };
      const transport = this.address.kind === 'http' && this.address.url.protocol === 'https:' ? https : http;
      const req = transport.request({ ...base, method, headers, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES)
            req.destroy(problemError(`answer larger than ${MAX_RESPONSE_BYTES} bytes`));
          else chunks.push(chunk);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', fail);
      });
      const timer = setTimeout(() => {
        req.destroy(Object.assign(new Error(`timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
      }, timeoutMs);
      function fail(err: Error): void {
        clearTimeout(timer);
        reject(err);
      }
      req.on('error', fail);
      req.end(payload);
    }).catch((err: unknown) => {
      throw this.transportError(method, path, err);
    });

    if (status === 401) {
      throw usageError(
        this.token === undefined
          ? `daemon at ${this.describe} requires a token (HTTP 401): pass --token or set CUEACCT_TOKEN`
          : `daemon at ${this.describe} rejected the token (HTTP 401)`,
      );
    }
    let body: unknown;
    if (text.trim() !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        throw problemError(
          `daemon at ${this.describe} answered ${method} ${path} with HTTP ${status} and a non-JSON body`,
          {
            detail: text.slice(0, 2000),
          },
        );
      }
    }
    return { status, body: body as T };
  }

  /** GET and return the body; any non-2xx status is an error (exit 1). */
  async getJson<T = unknown>(path: string, query?: DaemonRequestOptions['query']): Promise<T> {
    return this.expectOk<T>('GET', path, await this.request<T>('GET', path, query ? { query } : {}));
  }

  /** POST (JSON body) and return the body; any non-2xx status is an error (exit 1). */
  async postJson<T = unknown>(path: string, body?: unknown, timeoutMs?: number): Promise<T> {
    const options: DaemonRequestOptions = {};
    if (body !== undefined) options.body = body;
    if (timeoutMs !== undefined) options.timeoutMs = timeoutMs;
    return this.expectOk<T>('POST', path, await this.request<T>('POST', path, options));
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
    this.agent.destroy();
  }

  private pathWithQuery(path: string, query: DaemonRequestOptions['query']): string {
    const prefix = this.address.kind === 'http' ? this.address.url.pathname.replace(/\/$/, '') : '';
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) params.set(key, String(value));
    }
    const qs = params.toString();
    return `${prefix}${path.startsWith('/') ? path : `/${path}`}${qs ? `?${qs}` : ''}`;
  }

  private expectOk<T>(method: string, path: string, response: DaemonResponse<T>): T {
    if (response.status >= 200 && response.status < 300) return response.body;
    const body = response.body as { error?: unknown; message?: unknown } | undefined;
    const reason = [body?.error, body?.message].filter((v) => typeof v === 'string' && v !== '').join(': ');
    throw problemError(
      `daemon at ${this.describe} answered ${method} ${path} with HTTP ${response.status}${reason ? `: ${reason}` : ''}`,
    );
  }

  private transportError(method: string, path: string, err: unknown): CliError {
    if (err instanceof CliError) return err;
    const e = err as { code?: unknown; message?: unknown };
    const code = typeof e.code === 'string' ? e.code : undefined;
    const reason =
      code === 'ETIMEDOUT' && typeof e.message === 'string' ? e.message : (code ?? String(e.message));
    return unreachableError(`cannot reach daemon at ${this.describe}: ${reason}`, {
      detail: `${method} ${path}`,
      cause: err,
    });
  }
}
