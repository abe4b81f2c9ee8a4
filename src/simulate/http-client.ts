/**
 * A small JSON client for the daemon's HTTP API: one keep-alive agent, TCP (`http://host:port`)
 * or a Unix socket (`unix:/path`), bearer token, per-request timeout. A transport failure
 * (refused, reset, timeout) rejects with a {@link TransportError}; any HTTP status resolves.
 */
import http from 'node:http';

export class TransportError extends Error {
  override name = 'TransportError';
}

export interface JsonAnswer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface ApiClientOptions {
  /** `http://host:port` or `unix:/path/to/socket`. */
  url: string;
  token?: string;
  /** Per request (default 10 s). */
  timeoutMs?: number;
  /** Sockets kept open (default 1: one keep-alive connection, requests in sequence). */
  maxSockets?: number;
}

export class ApiClient {
  private readonly agent: http.Agent;
  private readonly target: { host: string; port: number } | { socketPath: string };
  private readonly timeoutMs: number;
  private readonly auth: string | undefined;

  constructor(options: ApiClientOptions) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 1 });
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.auth = options.token ? `Bearer ${options.token}` : undefined;
    if (options.url.startsWith('unix:')) {
      this.target = { socketPath: options.url.slice('unix:'.length) };
    } else {
      const url = new URL(options.url);
      if (url.protocol !== 'http:')
        throw new Error(`daemon URL must be http:// or unix:, got ${url.protocol}`);
      this.target = { host: url.hostname, port: Number(url.port || 80) };
    }
  }

  get(path: string): Promise<JsonAnswer> {
    return this.request('GET', path);
  }

  post(path: string, body?: unknown): Promise<JsonAnswer> {
    return this.request('POST', path, body);
  }

  request(method: string, path: string, body?: unknown): Promise<JsonAnswer> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: http.OutgoingHttpHeaders = {};
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    if (this.auth !== undefined) headers.authorization = this.auth;
    return new Promise<JsonAnswer>((resolve, reject) => {
      const req = http.request({ ...this.target, agent: this.agent, method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (err) => reject(new TransportError(err.message)));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // Prometheus text and the like stay strings.
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.setTimeout(this.timeoutMs, () =>
        req.destroy(new TransportError(`${method} ${path}: no answer within ${this.timeoutMs} ms`)),
      );
      req.on('error', (err) =>
        reject(err instanceof TransportError ? err : new TransportError(`${method} ${path}: ${err.message}`)),
      );
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
