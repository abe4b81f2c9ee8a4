import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import pino from 'pino';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { CapSet } from '../../src/core/types.js';
import { createHttpServer, MAX_BODY_BYTES, type HttpServer } from '../../src/http/server.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { rawExchange } from '../support/raw-http.js';
import { StoreBookingService } from './store-service.js';

// ---- helpers ------------------------------------------------------------------------------

const CAPS: CapSet = {
  subscriptions: [
    { show: 'show-a', alloc: 'alloc-1', burst: 10 },
    { show: 'show-a', alloc: 'alloc-2', burst: 1000 },
  ],
  folders: [{ id: 'folder-1', show: 'show-a', maxCores: 500, maxGpus: 2 }],
  jobs: [{ id: 'job-1', show: 'show-a', maxCores: -1, maxGpus: -1 }],
};

const BOOK = { show: 'show-a', alloc: 'alloc-1', folder: 'folder-1', job: 'job-1', cores: 2, gpus: 0 };

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json: any;
}

interface Target {
  port?: number;
  socketPath?: string;
  agent: http.Agent;
}

interface RequestOptions {
  body?: unknown;
  /** Sent as is (not JSON-encoded). */
  raw?: string | Buffer;
  headers?: Record<string, string>;
  token?: string;
  /** Send the body with chunked encoding (no content-length). */
  chunked?: boolean;
}

function request(
  target: Target,
  method: string,
  path: string,
  options: RequestOptions = {},
): Promise<Answer> {
  const payload =
    options.raw !== undefined
      ? Buffer.from(options.raw)
      : options.body !== undefined
        ? Buffer.from(JSON.stringify(options.body))
        : undefined;
  const headers: Record<string, string> = { ...options.headers };
  if (payload !== undefined && headers['content-type'] === undefined)
    headers['content-type'] = 'application/json';
  if (payload !== undefined && !options.chunked) headers['content-length'] = String(payload.length);
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: target.port,
        socketPath: target.socketPath,
        method,
        path,
        headers,
        agent: target.agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text === '' ? undefined : JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
        res.on('error', reject);
      },
    );
    // The server may answer (413) and close before the whole body is written.
    req.on('error', (err: NodeJS.ErrnoException) => reject(err));
    if (payload !== undefined && options.chunked) {
      // Several writes so the body really arrives in chunks.
      const step = 256 * 1024;
      for (let i = 0; i < payload.length; i += step) req.write(payload.subarray(i, i + step));
      req.end();
    } else {
      req.end(payload);
    }
  });
}

/** Poll a condition until it holds or the deadline passes (no fixed sleeps). */
async function waitFor(what: string, condition: () => boolean, deadlineMs = 5_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

class MemoryLog extends Writable {
  lines: string[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.lines.push(chunk.toString('utf8'));
    done();
  }
  get text(): string {
    return this.lines.join('');
  }
}

interface Harness {
  service: StoreBookingService;
  metrics: Metrics;
  http: HttpServer;
  target: Target;
  log: MemoryLog;
  address: string;
}

const harnesses: Harness[] = [];

async function start(options: { token?: string; listen?: { socket: string } } = {}): Promise<Harness> {
  const service = new StoreBookingService(CAPS);
  const metrics = new Metrics({ defaultMetrics: false });
  const log = new MemoryLog();
  const logger = createLogger({ level: 'debug', pretty: false, destination: log });
  const server = createHttpServer({ service, metrics, logger, token: options.token, version: '9.9.9-test' });
  const address = await server.listen(options.listen ?? { host: '127.0.0.1', port: 0 });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const target: Target =
    options.listen !== undefined
      ? { socketPath: options.listen.socket, agent }
      : { port: (server.server.address() as net.AddressInfo).port, agent };
  const harness = { service, metrics, http: server, target, log, address };
  harnesses.push(harness);
  return harness;
}

afterEach(async () => {
  for (const h of harnesses.splice(0)) {
    h.target.agent.destroy();
    await h.http.close(1_000);
  }
});

// ---- bookings -----------------------------------------------------------------------------

describe('booking endpoints', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await start();
  });

  it('books: applied with an opaque id and a lease', async () => {
    const before = Date.now();
    const answer = await request(h.target, 'POST', '/v1/book', { body: BOOK });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.json).toEqual({
      result: 'applied',
      booking: expect.any(String),
      lease_expires_at: expect.any(String),
      insert_deadline: expect.any(String),
    });
    const expires = Date.parse(answer.json.lease_expires_at);
    expect(expires).toBeGreaterThanOrEqual(before + 119_000);
    expect(h.service.store.subscription('show-a', 'alloc-1')?.cores).toBe(2);
  });

  it('answers 409 limit_exceeded with table, current and limit, and changes nothing', async () => {
    expect((await request(h.target, 'POST', '/v1/book', { body: { ...BOOK, cores: 8 } })).status).toBe(200);
    const answer = await request(h.target, 'POST', '/v1/book', { body: { ...BOOK, cores: 3 } });
    expect(answer.status).toBe(409);
    expect(answer.json).toEqual({ result: 'limit_exceeded', table: 'subscription', current: 8, limit: 10 });
    const gpus = await request(h.target, 'POST', '/v1/book', {
      body: { ...BOOK, alloc: 'alloc-2', gpus: 3 },
    });
    expect(gpus.status).toBe(409);
    expect(gpus.json).toEqual({ result: 'limit_exceeded', table: 'folder_gpus', current: 0, limit: 2 });
    expect(h.service.store.subscription('show-a', 'alloc-1')?.cores).toBe(8);
  });

  it('answers not_managed for a show the service does not own', async () => {
    const answer = await request(h.target, 'POST', '/v1/book', { body: { ...BOOK, show: 'show-legacy' } });
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ result: 'not_managed' });
  });

  it('confirms and rolls back once; a second settle is 404 unknown_booking', async () => {
    const first = (await request(h.target, 'POST', '/v1/book', { body: BOOK })).json.booking as string;
    const second = (await request(h.target, 'POST', '/v1/book', { body: BOOK })).json.booking as string;
    expect(first).not.toBe(second);

    const confirmed = await request(h.target, 'POST', '/v1/confirm', { body: { booking: first } });
    expect(confirmed.status).toBe(200);
    expect(confirmed.json).toEqual({ result: 'confirmed' });
    const again = await request(h.target, 'POST', '/v1/confirm', { body: { booking: first } });
    expect(again.status).toBe(404);
    expect(again.json).toEqual({ error: 'unknown_booking' });
    expect((await request(h.target, 'POST', '/v1/rollback', { body: { booking: first } })).status).toBe(404);

    const rolled = await request(h.target, 'POST', '/v1/rollback', { body: { booking: second } });
    expect(rolled.status).toBe(200);
    expect(rolled.json).toEqual({ result: 'rolled_back' });
    expect(h.service.store.subscription('show-a', 'alloc-1')?.cores).toBe(2);
    const unknown = await request(h.target, 'POST', '/v1/rollback', { body: { booking: 'no-such-booking' } });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual({ error: 'unknown_booking' });
  });

  it('answers 404 lease_expired for a booking whose lease ran out', async () => {
    const booking = (await request(h.target, 'POST', '/v1/book', { body: BOOK })).json.booking as string;
    h.service.expire(booking);
    for (const path of ['/v1/confirm', '/v1/rollback']) {
      const answer = await request(h.target, 'POST', path, { body: { booking } });
      expect(answer.status).toBe(404);
      expect(answer.json).toEqual({ error: 'lease_expired' });
    }
    // Settled as a confirm: the live counter keeps it.
    expect(h.service.store.subscription('show-a', 'alloc-1')?.cores).toBe(2);
  });

  it('runs a batch in order, each op on its own, with per-op statuses', async () => {
    const earlier = (await request(h.target, 'POST', '/v1/book', { body: BOOK })).json.booking as string;
    const answer = await request(h.target, 'POST', '/v1/batch', {
      body: {
        ops: [
          { op: 'book', ...BOOK, cores: 6 },
          { op: 'book', ...BOOK, cores: 4 }, // 2 + 6 + 4 > 10: rejected by the op before it
          { op: 'confirm', booking: earlier },
          { op: 'confirm', booking: earlier },
          { op: 'book', ...BOOK, show: 'show-legacy' },
          { op: 'rollback', booking: 'nope' },
          { op: 'book', ...BOOK, cores: 2 },
        ],
      },
    });
    expect(answer.status).toBe(200);
    const results = answer.json.results as Record<string, unknown>[];
    expect(results).toHaveLength(7);
    expect(results[0]).toEqual({
      status: 200,
      result: 'applied',
      booking: expect.any(String),
      lease_expires_at: expect.any(String),
      insert_deadline: expect.any(String),
    });
    expect(results[1]).toEqual({
      status: 409,
      result: 'limit_exceeded',
      table: 'subscription',
      current: 8,
      limit: 10,
    });
    expect(results[2]).toEqual({ status: 200, result: 'confirmed' });
    expect(results[3]).toEqual({ status: 404, error: 'unknown_booking' });
    expect(results[4]).toEqual({ status: 200, result: 'not_managed' });
    expect(results[5]).toEqual({ status: 404, error: 'unknown_booking' });
    expect(results[6]).toMatchObject({ status: 200, result: 'applied' });

    // The booking made inside the batch is a real booking.
    const rolled = await request(h.target, 'POST', '/v1/batch', {
      body: { ops: [{ op: 'rollback', booking: results[0]!.booking }] },
    });
    expect(rolled.json).toEqual({ results: [{ status: 200, result: 'rolled_back' }] });
    expect(h.service.store.subscription('show-a', 'alloc-1')?.cores).toBe(4);
  });

  it('answers book ops in a batch with 503 not_ready one by one while not ready', async () => {
    const booking = (await request(h.target, 'POST', '/v1/book', { body: BOOK })).json.booking as string;
    h.service.ready = false;
    const answer = await request(h.target, 'POST', '/v1/batch', {
      body: {
        ops: [
          { op: 'book', ...BOOK },
          { op: 'confirm', booking },
          { op: 'book', ...BOOK },
        ],
      },
    });
    expect(answer.status).toBe(200);
    expect(answer.json.results).toEqual([
      { status: 503, error: 'not_ready' },
      { status: 200, result: 'confirmed' },
      { status: 503, error: 'not_ready' },
    ]);
  });

  it('answers an empty batch with no results', async () => {
    const answer = await request(h.target, 'POST', '/v1/batch', { body: { ops: [] } });
    expect(answer.status).toBe(200);
    expect(answer.json).toEqual({ results: [] });
  });
});

// ---- validation ---------------------------------------------------------------------------

describe('validation', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await start();
  });

  const bookCases: [string, unknown, string][] = [
    [
      'cores fractional',
      { ...BOOK, cores: 1.5 },
      'cores: expected a whole number from 0 to 1000000, got a fractional number',
    ],
    [
      'cores negative',
      { ...BOOK, cores: -1 },
      'cores: expected a whole number from 0 to 1000000, got a negative number',
    ],
    [
      'cores a string',
      { ...BOOK, cores: '2' },
      'cores: expected a whole number from 0 to 1000000, got a string of 1 characters',
    ],
    [
      'cores unsafe',
      { ...BOOK, cores: 2 ** 60 },
      'cores: expected a whole number from 0 to 1000000, got a number outside the safe integer range',
    ],
    ['cores missing', { ...BOOK, cores: undefined }, 'cores: missing'],
    [
      'gpus negative',
      { ...BOOK, gpus: -2 },
      'gpus: expected a whole number from 0 to 10000, got a negative number',
    ],
    ['gpus null', { ...BOOK, gpus: null }, 'gpus: expected a whole number from 0 to 10000, got null'],
    ['gpus missing', { ...BOOK, gpus: undefined }, 'gpus: missing'],
    ['show missing', { ...BOOK, show: undefined }, 'show: missing'],
    [
      'show empty',
      { ...BOOK, show: '' },
      'show: expected a non-empty string of at most 256 characters, got an empty string',
    ],
    [
      'alloc a number',
      { ...BOOK, alloc: 7 },
      'alloc: expected a non-empty string of at most 256 characters, got a number',
    ],
    ['folder missing', { ...BOOK, folder: undefined }, 'folder: missing'],
    [
      'job too long',
      { ...BOOK, job: 'j'.repeat(257) },
      'job: expected a non-empty string of at most 256 characters, got a string of 257 characters',
    ],
    ['unknown field', { ...BOOK, gpu: 1 }, 'gpu: unexpected field'],
    ['an array', [BOOK], 'body: expected a JSON object, got an array'],
    ['a string', 'book', 'body: expected a JSON object, got a string of 4 characters'],
    ['null', null, 'body: expected a JSON object, got null'],
  ];
  it.each(bookCases)('book: %s → 400', async (_name, body, message) => {
    const answer = await request(h.target, 'POST', '/v1/book', { raw: JSON.stringify(body) });
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({ error: 'bad_request', message });
  });

  const settleCases: [string, unknown, string][] = [
    ['booking missing', {}, 'booking: missing'],
    [
      'booking empty',
      { booking: '' },
      'booking: expected a non-empty string of at most 256 characters, got an empty string',
    ],
    [
      'booking a number',
      { booking: 12 },
      'booking: expected a non-empty string of at most 256 characters, got a number',
    ],
    ['extra field', { booking: 'x', force: true }, 'force: unexpected field'],
  ];
  it.each(settleCases)('confirm and rollback: %s → 400', async (_name, body, message) => {
    for (const path of ['/v1/confirm', '/v1/rollback']) {
      const answer = await request(h.target, 'POST', path, { body });
      expect(answer.status).toBe(400);
      expect(answer.json).toEqual({ error: 'bad_request', message });
    }
  });

  const batchCases: [string, unknown, string][] = [
    ['ops missing', {}, 'ops: missing'],
    ['ops not an array', { ops: {} }, 'ops: expected an array, got an object'],
    ['extra field', { ops: [], atomic: true }, 'atomic: unexpected field'],
    [
      'unknown op',
      { ops: [{ op: 'book', ...BOOK }, { op: 'boook' }] },
      'ops[1].op: expected one of book, confirm, rollback, got a string of 5 characters',
    ],
    ['op missing', { ops: [{ booking: 'x' }] }, 'ops[0].op: missing'],
    ['op not an object', { ops: [3] }, 'ops[0]: expected a JSON object, got a number'],
    [
      'bad field in an op',
      { ops: [{ op: 'book', ...BOOK, cores: -4 }] },
      'ops[0].cores: expected a whole number from 0 to 1000000, got a negative number',
    ],
    ['missing booking in an op', { ops: [{ op: 'confirm' }] }, 'ops[0].booking: missing'],
    [
      'unknown field in an op',
      { ops: [{ op: 'rollback', booking: 'x', why: 1 }] },
      'ops[0].why: unexpected field',
    ],
  ];
  it.each(batchCases)('batch: %s → 400', async (_name, body, message) => {
    const answer = await request(h.target, 'POST', '/v1/batch', { body });
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({ error: 'bad_request', message });
  });

  it('batch: a malformed batch changes nothing', async () => {
    const answer = await request(h.target, 'POST', '/v1/batch', {
      body: {
        ops: [
          { op: 'book', ...BOOK },
          { op: 'book', ...BOOK, gpus: 0.5 },
        ],
      },
    });
    expect(answer.status).toBe(400);
    expect(answer.json.message).toBe(
      'ops[1].gpus: expected a whole number from 0 to 10000, got a fractional number',
    );
    expect(h.service.store.subscription('show-a', 'alloc-1')?.cores).toBe(0);
  });

  it('batch: more than 10,000 ops → 400', async () => {
    const ops = Array.from({ length: 10_001 }, () => ({ op: 'confirm', booking: 'x' }));
    const answer = await request(h.target, 'POST', '/v1/batch', { body: { ops } });
    expect(answer.status).toBe(400);
    expect(answer.json.message).toBe('ops: expected at most 10000 ops, got 10001');
  });

  it('answers a body that is not JSON, or empty, with 400', async () => {
    const broken = await request(h.target, 'POST', '/v1/book', { raw: '{"show": "a",' });
    expect(broken.status).toBe(400);
    expect(broken.json).toEqual({ error: 'bad_request', message: 'body: not valid JSON' });
    const empty = await request(h.target, 'POST', '/v1/confirm', { raw: '' });
    expect(empty.status).toBe(400);
    expect(empty.json).toEqual({ error: 'bad_request', message: 'body: missing (expected a JSON object)' });
  });

  it('answers a body that is not declared as JSON with 415', async () => {
    const answer = await request(h.target, 'POST', '/v1/book', {
      raw: 'show=a&cores=1',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(answer.status).toBe(415);
    expect(answer.json).toEqual({
      error: 'unsupported_media_type',
      message: 'content-type: expected application/json',
    });
    // A charset parameter or an application/*+json type is fine.
    const ok = await request(h.target, 'POST', '/v1/book', {
      body: BOOK,
      headers: { 'content-type': 'application/json; charset=UTF-8' },
    });
    expect(ok.status).toBe(200);
  });

  it('validates the /v1/state query', async () => {
    const good = await request(h.target, 'GET', '/v1/state?vertex=job&show=show-a&top=5&sort=utilization');
    expect(good.status).toBe(200);
    expect(h.service.stateQueries.at(-1)).toEqual({
      vertex: 'job',
      show: 'show-a',
      top: 5,
      sort: 'utilization',
    });
    expect(good.json).toMatchObject({ epoch: 0, total: 1, vertices: [{ kind: 'job', key: 'job-1' }] });

    const cases: [string, string][] = [
      ['vertex=host', 'vertex: expected one of subscription, folder, job'],
      ['top=0', 'top: expected a whole number from 1 to 5000'],
      ['top=2.5', 'top: expected a whole number from 1 to 5000'],
      ['top=5001', 'top: expected a whole number from 1 to 5000'],
      ['limit=0', 'limit: expected a whole number from 1 to 5000'],
      ['cursor=djEuOS45', 'cursor: expected the next_cursor of a previous page'],
      ['cursor=', 'cursor: expected the next_cursor of a previous page'],
      [
        'top=5&limit=5',
        'top: not with limit (top answers one sorted list; limit and cursor page the whole state)',
      ],
      ['sort=size', 'sort: expected one of utilization, name, cores, blocked'],
      ['show=', 'show: expected a non-empty string of at most 256 characters, got an empty string'],
      ['page=3', 'page: unexpected query parameter'],
      ['Secret-Token-123=1', 'query: an unexpected parameter'],
      ['top=1&top=2', 'top: given more than once'],
    ];
    for (const [query, message] of cases) {
      const answer = await request(h.target, 'GET', `/v1/state?${query}`);
      expect(answer.status, query).toBe(400);
      expect(answer.json).toEqual({ error: 'bad_request', message });
    }
  });

  it('answers a body over 1 MiB with 413 (declared length), and keeps serving', async () => {
    const big = Buffer.alloc(MAX_BODY_BYTES + 1, 0x20);
    const answer = await request(h.target, 'POST', '/v1/batch', { raw: big });
    expect(answer.status).toBe(413);
    expect(answer.json).toEqual({ error: 'payload_too_large', message: 'body: larger than 1048576 bytes' });
    expect((await request(h.target, 'POST', '/v1/book', { body: BOOK })).status).toBe(200);
  });

  it('answers a chunked body over 1 MiB with 413 without buffering it', async () => {
    const ops = Array.from({ length: 40_000 }, () => ({ op: 'confirm', booking: 'some-booking-id' }));
    const raw = JSON.stringify({ ops });
    expect(raw.length).toBeGreaterThan(MAX_BODY_BYTES);
    const answer = await request(h.target, 'POST', '/v1/batch', { raw, chunked: true });
    expect(answer.status).toBe(413);
    expect(answer.json.error).toBe('payload_too_large');
    expect(answer.headers.connection).toBe('close');
    expect((await request(h.target, 'POST', '/v1/book', { body: BOOK })).status).toBe(200);
  });

  it('refuses an oversized body announced with Expect: 100-continue before it is sent', async () => {
    const raw = await rawExchange(
      h.target.port!,
      `POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${MAX_BODY_BYTES + 1}\r\nExpect: 100-continue\r\n\r\n`,
    );
    expect(raw).toMatch(/^HTTP\/1\.1 413 /);
    expect(raw).not.toContain('100 Continue');
    expect(raw).toContain('"error":"payload_too_large"');
  });

  it('answers a malformed HTTP request with a JSON 400', async () => {
    const raw = await rawExchange(h.target.port!, 'BLAH\r\n\r\n');
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(raw).toContain('"error":"bad_request"');
  });

  it('accepts a body of exactly 1 MiB', async () => {
    const json = JSON.stringify({ ops: [] });
    const raw = json + ' '.repeat(MAX_BODY_BYTES - json.length);
    const answer = await request(h.target, 'POST', '/v1/batch', { raw });
    expect(answer.status).toBe(200);
  });
});

// ---- routing, auth, readiness ---------------------------------------------------------------

describe('routing', () => {
  it('answers 404 for an unknown path and 405 for a wrong method', async () => {
    const h = await start();
    const missing = await request(h.target, 'GET', '/v2/book');
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({ error: 'not_found' });
    expect((await request(h.target, 'POST', '/v1/book/')).status).toBe(404);

    const wrong = await request(h.target, 'GET', '/v1/book');
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('POST');
    expect(wrong.json.error).toBe('method_not_allowed');
    const post = await request(h.target, 'POST', '/v1/status', { body: {} });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((await request(h.target, 'DELETE', '/healthz')).status).toBe(405);
  });

  it('serves /healthz, /v1/status and HEAD', async () => {
    const h = await start();
    const health = await request(h.target, 'GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ status: 'ok' });
    expect((await request(h.target, 'HEAD', '/healthz')).status).toBe(200);
    const status = await request(h.target, 'GET', '/v1/status');
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({
      version: '9.9.9-test',
      ready: true,
      managed_shows: [{ id: 'show-a' }],
    });
  });

  it('keeps one connection alive across requests', async () => {
    const h = await start();
    let connections = 0;
    h.http.server.on('connection', () => connections++);
    for (let i = 0; i < 5; i++)
      expect((await request(h.target, 'POST', '/v1/book', { body: BOOK })).status).toBe(200);
    expect(connections).toBe(1);
    const health = await request(h.target, 'GET', '/healthz');
    expect(health.headers.connection).toBe('keep-alive');
  });
});

describe('internal errors', () => {
  it('answers 500 internal_error when the service throws, and keeps serving', async () => {
    const h = await start();
    h.service.status = () => {
      throw new Error('status exploded');
    };
    const answer = await request(h.target, 'GET', '/v1/status');
    expect(answer.status).toBe(500);
    expect(answer.json).toEqual({ error: 'internal_error' });
    expect(h.log.text).toContain('status exploded');
    expect((await request(h.target, 'GET', '/healthz')).status).toBe(200);
  });

  it('answers a throwing batch op with its own 500 and still runs the others', async () => {
    const h = await start();
    const confirm = h.service.confirm.bind(h.service);
    h.service.confirm = (booking: string) => {
      if (booking === 'boom') throw new Error('confirm exploded');
      return confirm(booking);
    };
    const answer = await request(h.target, 'POST', '/v1/batch', {
      body: {
        ops: [
          { op: 'book', ...BOOK },
          { op: 'confirm', booking: 'boom' },
          { op: 'book', ...BOOK },
        ],
      },
    });
    expect(answer.status).toBe(200);
    expect(answer.json.results.map((r: { status: number }) => r.status)).toEqual([200, 500, 200]);
    expect(answer.json.results[1]).toEqual({ status: 500, error: 'internal_error' });
  });
});

describe('bearer token', () => {
  const TOKEN = 's3cret-token-value';

  it('requires the token on every path but /healthz', async () => {
    const h = await start({ token: TOKEN });
    expect((await request(h.target, 'GET', '/healthz')).status).toBe(200);
    for (const [method, path] of [
      ['GET', '/v1/status'],
      ['POST', '/v1/book'],
      ['GET', '/metrics'],
      ['GET', '/readyz'],
      ['POST', '/v1/admin/recompute'],
      ['GET', '/nowhere'],
    ] as const) {
      const none = await request(h.target, method, path, method === 'POST' ? { body: BOOK } : {});
      expect(none.status, `${method} ${path}`).toBe(401);
      expect(none.json).toEqual({ error: 'unauthorized' });
      expect(none.headers['www-authenticate']).toBe('Bearer realm="cueacct"');
      const wrong = await request(h.target, method, path, { token: `${TOKEN}x` });
      expect(wrong.status).toBe(401);
    }
    expect((await request(h.target, 'GET', '/v1/status', { headers: { authorization: TOKEN } })).status).toBe(
      401,
    );
    expect(
      (await request(h.target, 'GET', '/v1/status', { headers: { authorization: `Basic ${TOKEN}` } })).status,
    ).toBe(401);
    expect(h.service.passes).toEqual([]);

    expect((await request(h.target, 'GET', '/v1/status', { token: TOKEN })).status).toBe(200);
    expect(
      (await request(h.target, 'GET', '/v1/status', { headers: { authorization: `bearer ${TOKEN}` } }))
        .status,
    ).toBe(200);
    expect((await request(h.target, 'POST', '/v1/book', { body: BOOK, token: TOKEN })).status).toBe(200);
    expect((await request(h.target, 'GET', '/metrics', { token: TOKEN })).status).toBe(200);
  });

  it('does not read the body of an unauthorized request of unknown length', async () => {
    const h = await start({ token: TOKEN });
    const answer = await request(h.target, 'POST', '/v1/batch', {
      raw: JSON.stringify({ ops: [] }) + ' '.repeat(4 * MAX_BODY_BYTES),
      chunked: true,
    });
    expect(answer.status).toBe(401);
    expect(answer.headers.connection).toBe('close');
    // A small body is discarded and the connection kept.
    const small = await request(h.target, 'POST', '/v1/book', { body: BOOK });
    expect(small.status).toBe(401);
    expect(small.headers.connection).toBe('keep-alive');
  });

  it('never logs the token or request bodies', async () => {
    const h = await start({ token: TOKEN });
    await request(h.target, 'GET', '/v1/status', { token: 'wrong-token-value' });
    await request(h.target, 'POST', '/v1/book', { token: TOKEN, body: { ...BOOK, note: 'body-marker' } });
    await request(h.target, 'POST', '/v1/book', { token: TOKEN, raw: '{"body-marker-2' });
    h.service.failures.set('reseed', new Error(`reseed failed: postgres://cue:${TOKEN}@db/cue`));
    const failed = await request(h.target, 'POST', '/v1/admin/reseed', { token: TOKEN });
    expect(failed.status).toBe(500);
    expect(failed.text).not.toContain(TOKEN);
    expect(h.log.text).toContain('request rejected'); // 4xx are logged at debug
    expect(h.log.text).not.toContain(TOKEN);
    expect(h.log.text).not.toContain('wrong-token-value');
    expect(h.log.text).not.toContain('body-marker');
  });
});

describe('readiness', () => {
  it('answers book with 503 not_ready and /readyz with 503 until ready', async () => {
    const h = await start();
    h.service.ready = false;
    const book = await request(h.target, 'POST', '/v1/book', { body: BOOK });
    expect(book.status).toBe(503);
    expect(book.json).toEqual({ error: 'not_ready' });
    const readyz = await request(h.target, 'GET', '/readyz');
    expect(readyz.status).toBe(503);
    expect(readyz.json).toEqual({ error: 'not_ready' });
    expect((await request(h.target, 'GET', '/healthz')).status).toBe(200);

    h.service.ready = true;
    const ready = await request(h.target, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.json).toEqual({ status: 'ready' });
    expect((await request(h.target, 'POST', '/v1/book', { body: BOOK })).status).toBe(200);
  });
});

describe('admin passes', () => {
  it('runs the pass and answers when it is done', async () => {
    const h = await start();
    for (const [path, pass] of [
      ['/v1/admin/recompute', 'recompute'],
      ['/v1/admin/reseed', 'reseed'],
      ['/v1/admin/refresh-shows', 'refreshShows'],
    ] as const) {
      const answer = await request(h.target, 'POST', path);
      expect(answer.status).toBe(200);
      expect(answer.json).toEqual({ result: 'done', duration_ms: expect.any(Number) });
      expect(h.service.passes.at(-1)).toBe(pass);
    }
    expect((await request(h.target, 'POST', '/v1/admin/recompute', { body: {} })).status).toBe(200);
    const extra = await request(h.target, 'POST', '/v1/admin/recompute', { body: { now: true } });
    expect(extra.status).toBe(400);
    expect(extra.json.message).toBe('now: unexpected field');
  });

  it('answers 500 pass_failed with the error, password removed', async () => {
    const h = await start();
    h.service.failures.set(
      'recompute',
      new Error('connect postgres://cue:hunter2@db:5432/cue: ECONNREFUSED'),
    );
    const answer = await request(h.target, 'POST', '/v1/admin/recompute');
    expect(answer.status).toBe(500);
    expect(answer.json).toEqual({
      error: 'pass_failed',
      message: 'connect postgres://cue:***@db:5432/cue: ECONNREFUSED',
    });
    expect(h.log.text).toContain('admin pass failed');
    expect(h.log.text).not.toContain('hunter2');
  });
});

// ---- metrics ------------------------------------------------------------------------------

describe('/metrics', () => {
  it('serves Prometheus text that counts every booking outcome', async () => {
    const h = await start();
    await request(h.target, 'POST', '/v1/book', { body: BOOK }); // applied
    await request(h.target, 'POST', '/v1/book', { body: { ...BOOK, cores: 9 } }); // subscription 2+9 > 10
    await request(h.target, 'POST', '/v1/book', { body: { ...BOOK, show: 'show-x' } }); // not_managed
    await request(h.target, 'POST', '/v1/batch', {
      body: {
        ops: [
          { op: 'book', ...BOOK }, // applied
          { op: 'book', ...BOOK, alloc: 'alloc-2', gpus: 5 }, // folder_gpus
          { op: 'book', ...BOOK, cores: 100 }, // subscription
          { op: 'confirm', booking: 'x' },
        ],
      },
    });
    await request(h.target, 'POST', '/v1/book', { body: { ...BOOK, cores: 'x' } }); // 400: not a booking outcome
    h.service.ready = false;
    await request(h.target, 'POST', '/v1/book', { body: BOOK }); // not_ready
    await request(h.target, 'POST', '/v1/batch', { body: { ops: [{ op: 'book', ...BOOK }] } }); // not_ready

    const answer = await request(h.target, 'GET', '/metrics');
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe(h.metrics.registry.contentType);
    expect(answer.text).toContain('# TYPE cueacct_bookings_total counter');
    const samples = new Map<string, number>();
    for (const line of answer.text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
      expect(match, `not a Prometheus sample line: ${line}`).not.toBeNull();
      samples.set(`${match![1]}${match![2] ?? ''}`, Number(match![3]));
    }
    expect(
      Object.fromEntries([...samples].filter(([key]) => key.startsWith('cueacct_bookings_total'))),
    ).toEqual({
      'cueacct_bookings_total{result="applied",table=""}': 2,
      'cueacct_bookings_total{result="limit_exceeded",table="subscription"}': 2,
      'cueacct_bookings_total{result="limit_exceeded",table="folder_gpus"}': 1,
      'cueacct_bookings_total{result="not_managed",table=""}': 1,
      'cueacct_bookings_total{result="not_ready",table=""}': 2,
    });
    // Same text as the registry's own output.
    expect(answer.text).toContain(await h.metrics.registry.getSingleMetricAsString('cueacct_bookings_total'));
  });
});

// ---- lifecycle ----------------------------------------------------------------------------

describe('close', () => {
  it('stops accepting, waits for an in-flight request, then resolves', async () => {
    const h = await start();
    const held = h.service.hold('recompute');
    const inflight = request(h.target, 'POST', '/v1/admin/recompute');
    await held.started;

    let closed = false;
    const closing = h.http.close(10_000).then(() => (closed = true));
    await waitFor('the server to stop listening', () => !h.http.server.listening);
    // New connections are refused while the in-flight request still runs.
    const refused = await new Promise<string>((resolve) => {
      const socket = net.connect(h.target.port!, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
    });
    expect(refused).toBe('ECONNREFUSED');
    expect(closed).toBe(false);

    held.release();
    const answer = await inflight;
    expect(answer.status).toBe(200);
    expect(answer.json.result).toBe('done');
    expect(answer.headers.connection).toBe('close');
    await closing;
    expect(closed).toBe(true);
  });

  it('destroys connections still busy at the deadline', async () => {
    const h = await start();
    const held = h.service.hold('reseed');
    const inflight = request(h.target, 'POST', '/v1/admin/reseed').then(
      () => 'answered',
      (err: NodeJS.ErrnoException) => err.code ?? 'error',
    );
    await held.started;
    const started = Date.now();
    await h.http.close(100);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(await inflight).toBe('ECONNRESET');
    held.release();
  });

  it('closes idle keep-alive connections at once', async () => {
    const h = await start();
    expect((await request(h.target, 'GET', '/healthz')).status).toBe(200);
    const started = Date.now();
    await h.http.close(10_000);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('unix socket', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cueacct-http-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('listens with mode 0600 and serves requests; removes the file on close', async () => {
    const socket = join(dir, 'api.sock');
    const h = await start({ listen: { socket } });
    expect(h.address).toBe(`unix:${socket}`);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    expect((await request(h.target, 'POST', '/v1/book', { body: BOOK })).status).toBe(200);
    expect((await request(h.target, 'GET', '/healthz')).json).toEqual({ status: 'ok' });
    h.target.agent.destroy();
    await h.http.close(1_000);
    expect(existsSync(socket)).toBe(false);
  });

  it('replaces a stale socket file left by a dead process', async () => {
    const socket = join(dir, 'stale.sock');
    const child = spawn(process.execPath, [
      '-e',
      `require('node:net').createServer().listen(${JSON.stringify(socket)}, () => console.log('up'))`,
    ]);
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('error', reject);
    });
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(statSync(socket).isSocket()).toBe(true); // left behind

    const h = await start({ listen: { socket } });
    expect((await request(h.target, 'GET', '/healthz')).status).toBe(200);
  });

  it('refuses a socket another server answers on, and a path that is not a socket', async () => {
    const socket = join(dir, 'busy.sock');
    await start({ listen: { socket } });
    const second = createHttpServer({
      service: new StoreBookingService(CAPS),
      metrics: new Metrics({ defaultMetrics: false }),
      logger: pino({ level: 'silent' }),
      version: 'x',
    });
    await expect(second.listen({ socket })).rejects.toMatchObject({ code: 'EADDRINUSE' });

    const file = join(dir, 'not-a-socket');
    writeFileSync(file, 'keep me');
    await expect(second.listen({ socket: file })).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(file, 'utf8')).toBe('keep me');
    await second.close(100);
  });
});
