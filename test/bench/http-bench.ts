/**
 * HTTP API benchmark (SPEC §4): book round-trips per second and latency from one keep-alive
 * client, and bookings per second through `POST /v1/batch` with 100 books per request.
 *
 * The server runs on this thread; the client runs in a worker thread (a scheduler is another
 * process: client and server must not share one event loop). One keep-alive connection, one
 * request at a time; the client speaks HTTP/1.1 on the socket itself so that what is measured
 * is the server (see CLIENT below for why not `http.Agent`).
 *
 * Run alone: `npm run build && node build/test/bench/http-bench.js [seconds] [raw|agent]`.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

import pino from 'pino';

import type { BookingRequest } from '../../src/core/types.js';
import { createHttpServer } from '../../src/http/server.js';
import { Metrics } from '../../src/observability/metrics.js';
import type { BookingService } from '../../src/service/types.js';
import { StoreBookingService } from '../http/store-service.js';
import { syntheticFarm, type SyntheticFarm } from './synthetic-farm.js';

export interface HttpBenchResult {
  bookRoundTripsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  batchBookingsPerSecond: number;
  /** The same batches with two in flight on the connection (HTTP/1.1 pipelining; raw client only). */
  pipelinedBatchBookingsPerSecond: number | null;
}

export interface HttpBenchOptions {
  /** Measured seconds per phase (after a short warm-up); default 2. */
  seconds?: number;
  /** Books per batch request; default 100. */
  batchSize?: number;
  /** The bookings to send, in rotation; default {@link httpBenchFarm}'s. */
  requests?: BookingRequest[];
  /** HTTP client in the worker: `raw` (default) or `agent` (see CLIENT below). */
  client?: 'raw' | 'agent';
}

/** The farm the default bench requests book against: seed the service under test with it. */
export function httpBenchFarm(): SyntheticFarm {
  return syntheticFarm(4_096);
}

export interface ClientResult extends HttpBenchResult {
  /** Fraction of bookings answered `applied` (both phases). */
  appliedFraction: number;
}

interface ClientInput {
  host?: string;
  port?: number;
  socketPath?: string;
  seconds: number;
  batchSize: number;
  requests: BookingRequest[];
  token: string | undefined;
  client: 'raw' | 'agent';
}

interface Answer {
  status: number;
  text: string;
}

interface BenchClient<R> {
  prepare(path: string, body: string): R;
  send(request: R): Promise<Answer>;
  close(): void;
}

/**
 * The client. It runs in a worker thread and is sent there as source text, so it must not use
 * anything from this module's scope. Phase 1: one POST /v1/book at a time; phase 2: one POST
 * /v1/batch of `batchSize` books at a time; both on one keep-alive connection.
 *
 * `raw` (default) speaks HTTP/1.1 on a `net.Socket` itself: prebuilt requests, answers split by
 * `content-length`. `agent` is `http.request` on `http.Agent({ keepAlive: true, maxSockets: 1 })`;
 * on the 2-core machine Node's client side alone caps that loop near 6,000 round-trips/s
 * against a server that answers a constant, so it measures the client more than the server.
 */
async function clientMain(): Promise<void> {
  const http = process.getBuiltinModule('node:http');
  const net = process.getBuiltinModule('node:net');
  const { parentPort, workerData } = process.getBuiltinModule('node:worker_threads');
  const input = workerData as ClientInput;
  const { host, port, socketPath, seconds, batchSize, requests, token } = input;

  function agentClient(): BenchClient<{ path: string; body: string }> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    return {
      prepare: (path, body) => ({ path, body }),
      send: ({ path, body }) =>
        new Promise<Answer>((resolve, reject) => {
          const req = http.request(
            {
              host,
              port,
              socketPath,
              path,
              method: 'POST',
              agent,
              headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
            },
            (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (chunk: string) => (text += chunk));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
              res.on('error', reject);
            },
          );
          req.on('error', reject);
          req.end(body);
        }),
      close: () => agent.destroy(),
    };
  }

  async function rawClient(): Promise<BenchClient<Buffer>> {
    const socket = socketPath !== undefined ? net.connect(socketPath) : net.connect(port!, host);
    socket.setNoDelay(true);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    socket.setEncoding('latin1');
    let buffer = '';
    // Answers come back in request order (HTTP/1.1), so waiters form a FIFO: pipelining works.
    const waiting: { resolve(answer: Answer): void; reject(err: Error): void }[] = [];
    let failed: Error | null = null;
    const failAll = (err: Error) => {
      for (const w of waiting.splice(0)) w.reject(err);
    };
    socket.on('error', (err) => {
      failed = err;
      failAll(err);
    });
    socket.on('close', () => {
      failed ??= new Error('connection closed');
      failAll(failed);
    });
    socket.on('data', (data: string) => {
      buffer += data;
      for (;;) {
        const head = buffer.indexOf('\r\n\r\n');
        if (head < 0) return;
        const headers = buffer.slice(0, head);
        const length = /\r\ncontent-length: *(\d+)/i.exec(headers);
        if (length === null) {
          socket.destroy(new Error('answer without content-length'));
          return;
        }
        const end = head + 4 + Number(length[1]);
        if (buffer.length < end) return;
        const answer = { status: Number(headers.slice(9, 12)), text: buffer.slice(head + 4, end) };
        buffer = buffer.slice(end);
        waiting.shift()?.resolve(answer);
      }
    });
    const auth = token ? `Authorization: Bearer ${token}\r\n` : '';
    return {
      prepare: (path, body) =>
        Buffer.from(
          `POST ${path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n${auth}` +
            `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        ),
      send: (request) =>
        new Promise<Answer>((resolve, reject) => {
          if (failed !== null) {
            reject(failed);
            return;
          }
          waiting.push({ resolve, reject });
          socket.write(request);
        }),
      close: () => socket.destroy(),
    };
  }

  function countApplied(text: string): number {
    let n = 0;
    for (let i = text.indexOf('"applied"'); i >= 0; i = text.indexOf('"applied"', i + 9)) n++;
    return n;
  }

  async function measure<R>(c: BenchClient<R>): Promise<void> {
    const books = requests.map((r) => c.prepare('/v1/book', JSON.stringify(r)));
    const batches: R[] = [];
    for (let b = 0; b < 64; b++) {
      const ops = [];
      for (let i = 0; i < batchSize; i++)
        ops.push({ op: 'book', ...requests[(b * batchSize + i) % requests.length] });
      batches.push(c.prepare('/v1/batch', JSON.stringify({ ops })));
    }
    let sent = 0;
    let applied = 0;

    // Phase 1: single books. Warm up, then measure.
    let i = 0;
    const warm = performance.now() + 300;
    while (performance.now() < warm) await c.send(books[i++ % books.length]!);
    const latencies = new Float64Array(1 << 21);
    let n = 0;
    const start = performance.now();
    const end = start + seconds * 1000;
    let now = start;
    while (now < end && n < latencies.length) {
      const t0 = now;
      const answer = await c.send(books[i++ % books.length]!);
      now = performance.now();
      latencies[n++] = now - t0;
      sent++;
      if (answer.status === 200) applied += countApplied(answer.text);
    }
    const bookRoundTripsPerSecond = n / ((now - start) / 1000);
    const sorted = latencies.subarray(0, n).sort();
    const percentile = (p: number) => sorted[Math.min(n - 1, Math.floor(p * n))]!;

    // Phase 2: batches, `depth` requests in flight on the one connection.
    let b = 0;
    const batchRate = async (depth: number): Promise<number> => {
      const warm2 = performance.now() + 300;
      while (performance.now() < warm2) await c.send(batches[b++ % batches.length]!);
      let booked = 0;
      const start2 = performance.now();
      const end2 = start2 + seconds * 1000;
      const lane = async () => {
        while (performance.now() < end2) {
          const answer = await c.send(batches[b++ % batches.length]!);
          if (answer.status !== 200)
            throw new Error(`batch answered HTTP ${answer.status}: ${answer.text.slice(0, 200)}`);
          booked += batchSize;
          sent += batchSize;
          applied += countApplied(answer.text);
        }
      };
      await Promise.all(Array.from({ length: depth }, lane));
      return booked / ((performance.now() - start2) / 1000);
    };
    const batchBookingsPerSecond = await batchRate(1);
    const pipelinedBatchBookingsPerSecond = input.client === 'raw' ? await batchRate(2) : null;
    c.close();
    parentPort!.postMessage({
      bookRoundTripsPerSecond,
      p50Ms: percentile(0.5),
      p99Ms: percentile(0.99),
      batchBookingsPerSecond,
      pipelinedBatchBookingsPerSecond,
      appliedFraction: sent === 0 ? 0 : applied / sent,
    });
  }

  await measure<unknown>(input.client === 'agent' ? agentClient() : await rawClient());
}

/** Run the benchmark client against a server that is already listening. */
export async function runHttpClient(
  target: { host: string; port: number } | { socketPath: string },
  options: HttpBenchOptions & { token?: string } = {},
): Promise<ClientResult> {
  const source = `(${clientMain.toString()})().catch((err) => { throw err; });`;
  const worker = new Worker(source, {
    eval: true,
    workerData: {
      ...target,
      seconds: options.seconds ?? 2,
      batchSize: options.batchSize ?? 100,
      requests: options.requests ?? httpBenchFarm().requests,
      token: options.token,
      client: options.client ?? 'raw',
    },
  });
  const [result] = (await once(worker, 'message')) as [ClientResult];
  await worker.terminate();
  return result;
}

/**
 * Start the HTTP API over `service` on a free loopback port, measure, and close it. The
 * service must accept the bench's bookings (see {@link httpBenchFarm}); a run where fewer
 * than 99 % applied fails, since rejections would measure the wrong path.
 */
export async function benchHttp(
  service: BookingService,
  metrics: Metrics,
  options: HttpBenchOptions = {},
): Promise<HttpBenchResult> {
  const api = createHttpServer({ service, metrics, logger: pino({ level: 'silent' }), version: 'bench' });
  await api.listen({ host: '127.0.0.1', port: 0 });
  try {
    const { port } = api.server.address() as AddressInfo;
    const result = await runHttpClient({ host: '127.0.0.1', port }, options);
    if (result.appliedFraction < 0.99) {
      throw new Error(
        `only ${(result.appliedFraction * 100).toFixed(1)}% of the bench bookings applied: ` +
          'seed the service with httpBenchFarm() caps and manage its shows',
      );
    }
    const { bookRoundTripsPerSecond, p50Ms, p99Ms, batchBookingsPerSecond, pipelinedBatchBookingsPerSecond } =
      result;
    return { bookRoundTripsPerSecond, p50Ms, p99Ms, batchBookingsPerSecond, pipelinedBatchBookingsPerSecond };
  } finally {
    await api.close(1_000);
  }
}

/** Standalone run: print the numbers against the in-memory test service. */
async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 2);
  const client = process.argv[3] === 'agent' ? 'agent' : 'raw';
  const farm = httpBenchFarm();
  const result = await benchHttp(new StoreBookingService(farm.caps), new Metrics(), { seconds, client });
  const rate = (n: number) => `${Math.round(n).toLocaleString('en-US')}/s`;
  console.table([
    {
      metric: `HTTP book round-trips (1 keep-alive client, ${client})`,
      value: rate(result.bookRoundTripsPerSecond),
      target: '>= 10,000/s',
    },
    { metric: 'HTTP book latency p50', value: `${result.p50Ms.toFixed(3)} ms`, target: '' },
    { metric: 'HTTP book latency p99', value: `${result.p99Ms.toFixed(3)} ms`, target: '< 5 ms' },
    { metric: 'HTTP batch of 100 books', value: rate(result.batchBookingsPerSecond), target: '>= 200,000/s' },
    {
      metric: 'HTTP batch of 100 books, two in flight',
      value:
        result.pipelinedBatchBookingsPerSecond === null
          ? 'n/a'
          : rate(result.pipelinedBatchBookingsPerSecond),
      target: '>= 200,000/s',
    },
  ]);
}

const entry = process.argv[1];
if (entry !== undefined && /http-bench\.[cm]?js$/.test(entry) && fileURLToPath(import.meta.url) === entry) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
