/**
 * One JSON request to the daemon over a keep-alive `node:http(s)` agent (TCP or a unix
 * socket), with a deadline and bearer token. Any HTTP status resolves (with `Retry-After`
 * when the daemon sent one); a transport failure rejects with kind `unreachable`, a body that
 * is not JSON with kind `rejected`. Shared by the library's calls and the CLI's daemon client.
 */
import http from 'node:http';
import https from 'node:https';
import { AccountingClientError } from './errors.js';
import type { DaemonAddress } from './address.js';

/** Answers larger than this are refused (the daemon's own request limit is 1 MiB). */
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export type Query = Record<string, string | number | boolean | undefined>;

export interface RawAnswer<T = unknown> {
  status: number;
  /** Parsed JSON body; `undefined` for an empty body. */
  body: T;
  /** Seconds from a `Retry-After` header, when the daemon sent one. */
  retryAfterS?: number;
}

export interface TransportOptions {
  token?: string | undefined;
  timeoutMs: number;
  /** Sockets kept open to the daemon. */
  maxSockets: number;
}

export class JsonTransport {
  private readonly agent: http.Agent;
  private readonly auth: string | undefined;
  private readonly secure: boolean;

  constructor(
    readonly address: DaemonAddress,
    private readonly options: TransportOptions,
  ) {
    this.secure = address.kind === 'http' && address.url.protocol === 'https:';
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets };
    this.agent = this.secure ? new https.Agent(agentOptions) : new http.Agent(agentOptions);
    this.auth = options.token === undefined || options.token === '' ? undefined : `Bearer ${options.token}`;
  }

  get hasToken(): boolean {
    return this.auth !== undefined;
  }

  async request<T = unknown>(
    method: 'GET' | 'POST',
    path: string,
    options: { body?: unknown; query?: Query; timeoutMs?: number } = {},
  ): Promise<RawAnswer<T>> {
    const target = this.pathWithQuery(path, options.query);
    const payload = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    if (this.auth !== undefined) headers.authorization = this.auth;
    const timeoutMs = options.timeoutMs ?? this.options.timeoutMs;
    const base =
      this.address.kind === 'unix'
        ? { socketPath: this.address.socketPath }
        : {
            protocol: this.address.url.protocol,
            hostname: this.address.url.hostname.replace(/^\[(.*)\]$/, '$1'),
            port: this.address.url.port,
          };
    const transport = this.secure ? https : http;

    const answer = await new Promise<{ status: number; text: string; retryAfter?: string }>(
      (resolve, reject) => {
        const req = transport.request(
          { ...base, path: target, method, headers, agent: this.agent },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (chunk: Buffer) => {
              size += chunk.length;
              if (size > MAX_RESPONSE_BYTES) {
                req.destroy(
                  new AccountingClientError('rejected', `answer larger than ${MAX_RESPONSE_BYTES} bytes`),
                );
              } else chunks.push(chunk);
            });
            res.on('end', () => {
              clearTimeout(timer);
              const retryAfter = res.headers['retry-after'];
              resolve({
                status: res.statusCode ?? 0,
                text:
                  chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'),
                ...(typeof retryAfter === 'string' ? { retryAfter } : {}),
              });
            });
            res.on('error', fail);
          },
        );
        const timer = setTimeout(() => {
          req.destroy(Object.assign(new Error(`timed out after ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
        }, timeoutMs);
        function fail(err: Error): void {
          clearTimeout(timer);
          reject(err);
        }
        req.on('error', fail);
        req.end(payload);
      },
    ).catch((err: unknown) => {
      throw this.transportError(method, path, err);
    });

    let body: unknown;
    if (answer.text.trim() !== '') {
      try {
        body = JSON.parse(answer.text);
      } catch {
        throw new AccountingClientError(
          'rejected',
          `daemon at ${this.address.describe} answered ${method} ${path} with HTTP ${answer.status} and a non-JSON body`,
          { status: answer.status, body: answer.text.slice(0, 2000) },
        );
      }
    }
    const retryAfterS = parseRetryAfter(answer.retryAfter);
    return { status: answer.status, body: body as T, ...(retryAfterS === undefined ? {} : { retryAfterS }) };
  }

  /** Drop idle keep-alive connections (they never keep the process alive on their own). */
  close(): void {
    this.agent.destroy();
  }

  private pathWithQuery(path: string, query: Query | undefined): string {
    const prefix = this.address.kind === 'http' ? this.address.url.pathname.replace(/\/$/, '') : '';
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query ?? {})) {
      if (value !== undefined) params.set(key, String(value));
    }
    const qs = params.toString();
    return `${prefix}${path.startsWith('/') ? path : `/${path}`}${qs ? `?${qs}` : ''}`;
  }

  private transportError(method: string, path: string, err: unknown): AccountingClientError {
    if (err instanceof AccountingClientError) return err;
    const e = err as { code?: unknown; message?: unknown };
    const code = typeof e.code === 'string' ? e.code : undefined;
    const reason =
      code === 'ETIMEDOUT' && typeof e.message === 'string' ? e.message : (code ?? String(e.message));
    return new AccountingClientError(
      'unreachable',
      `cannot reach daemon at ${this.address.describe}: ${reason}`,
      { ...(code === undefined ? {} : { code }), cause: err, body: `${method} ${path}` },
    );
  }
}

/** `Retry-After` as seconds (delta-seconds or an HTTP date); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - now) / 1000);
}
