/**
 * The client library (`src/client/`, exported as `cueacct`) against the real daemon process:
 * micro-batching, 503 retries that honour Retry-After, the lease-aware `withBooking`, and the
 * packed package (npm pack → installed elsewhere → imported without building) running the
 * scheduler example of docs/api.md.
 */
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountingClient, AccountingClientError } from '../../src/client/index.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { api, startDaemon, waitReady, type Daemon } from '../support/daemon.js';
import { bookingFor, createSmallFarm, type SmallFarm } from '../support/service.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

let db: TestDatabase;
let farm: SmallFarm;
let exampleFarm: SmallFarm;
let daemon: Daemon;
const clients: AccountingClient[] = [];

function client(options: ConstructorParameters<typeof AccountingClient>[0] = {}): AccountingClient {
  const c = new AccountingClient({ url: daemon.url, ...options });
  clients.push(c);
  return c;
}

async function jobCores(job: string): Promise<{ cores: number; inflight: number }> {
  const state = await api(daemon, 'GET', '/v1/state?vertex=job');
  const vertex = (state.body.vertices as { key: string; cores: number; inflight_cores: number }[]).find(
    (v) => v.key === job,
  );
  return { cores: vertex?.cores ?? 0, inflight: vertex?.inflight_cores ?? 0 };
}

beforeAll(async () => {
  db = await createTestDatabase();
  farm = await createSmallFarm(db.sql, {
    managed: true,
    burst: 1_000,
    jobCores: 10,
    showName: 'client-show',
  });
  exampleFarm = await createSmallFarm(db.sql, { managed: true, burst: 14, showName: 'example-show' });
  daemon = await startDaemon({ databaseUrl: db.url });
  await waitReady(daemon);
});
afterAll(async () => {
  for (const c of clients) c.close();
  await daemon?.stop('SIGKILL');
  await db?.drop();
});

describe('AccountingClient micro-batching', () => {
  it('sends concurrent book calls as one /v1/batch and gives each caller its own answer', async () => {
    const c = client();
    // 12 one-core bookings against a job capped at 10 cores, all made in one turn.
    const answers = await Promise.all(Array.from({ length: 12 }, () => c.book(bookingFor(farm, 1))));
    expect(c.stats.batches).toBe(1);
    expect(c.stats.ops).toBe(12);
    expect(answers.filter((a) => a.result === 'applied')).toHaveLength(10);
    expect(answers.slice(10)).toEqual([
      { result: 'limit_exceeded', table: 'job', current: 10, limit: 10 },
      { result: 'limit_exceeded', table: 'job', current: 10, limit: 10 },
    ]);
    const ids = answers.flatMap((a) => (a.result === 'applied' ? [a.booking] : []));
    expect(new Set(ids).size).toBe(10);
    const settled = await Promise.all(ids.map((id) => c.rollback(id)));
    expect(settled.every((s) => 'result' in s && s.result === 'rolled_back')).toBe(true);
    expect(c.stats.batches).toBe(2);
    expect(await jobCores(farm.job)).toEqual({ cores: 0, inflight: 0 });
  });

  it('answers a bad request as an error of kind rejected, without failing the other callers', async () => {
    const c = client();
    const [good, bad] = await Promise.allSettled([
      c.book(bookingFor(farm, 1)),
      c.book({ ...bookingFor(farm, 1), show: '' }),
    ]);
    // The batch is validated as a whole: one malformed op makes the daemon refuse all of it.
    expect(good.status).toBe('rejected');
    expect(bad.status).toBe('rejected');
    expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(AccountingClientError);
    expect((bad as PromiseRejectedResult).reason.kind).toBe('rejected');
    expect(await jobCores(farm.job)).toEqual({ cores: 0, inflight: 0 });
  });
});

describe('AccountingClient retries', () => {
  it('retries a 503 no sooner than its Retry-After, then resolves', async () => {
    // A stand-in for a daemon that is not ready yet: the first batch answers 503 with
    // Retry-After: 1, the next ones are forwarded to the real daemon.
    const arrivals: number[] = [];
    const target = new URL(daemon.url);
    const proxy = http.createServer((req, res) => {
      arrivals.push(Date.now());
      if (arrivals.length === 1) {
        res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
        res.end('{"error":"not_ready"}');
        return;
      }
      const forward = http.request(
        { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      req.pipe(forward);
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    try {
      const c = client({ url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}` });
      const answer = await c.book(bookingFor(farm, 1));
      expect(answer.result).toBe('applied');
      expect(arrivals).toHaveLength(2);
      expect(arrivals[1]! - arrivals[0]!).toBeGreaterThanOrEqual(950);
      expect(c.stats.retries).toBe(1);
      if (answer.result === 'applied') await c.rollback(answer.booking);
    } finally {
      proxy.close();
    }
  });

  it('gives up after its attempts with kind unavailable', async () => {
    const proxy = http.createServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":"not_ready"}');
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    try {
      const c = client({
        url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
        retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 },
      });
      await expect(c.book(bookingFor(farm, 1))).rejects.toMatchObject({ kind: 'unavailable' });
      expect(c.stats.batches).toBe(3);
    } finally {
      proxy.close();
    }
  });
});

describe('AccountingClient.withBooking', () => {
  it('confirms after an insert, and the cores stay counted', async () => {
    const c = client();
    const outcome = await c.withBooking(bookingFor(farm, 3), async ({ deadline }) => {
      expect(deadline.getTime()).toBeGreaterThan(Date.now());
      expect(await jobCores(farm.job)).toEqual({ cores: 3, inflight: 3 });
      return { inserted: true, value: 'proc-1' };
    });
    expect(outcome).toMatchObject({ result: 'confirmed', value: 'proc-1' });
    expect(await jobCores(farm.job)).toEqual({ cores: 3, inflight: 0 });
  });

  it('rolls back when nothing was inserted', async () => {
    const c = client();
    const before = await jobCores(farm.job);
    const outcome = await c.withBooking(bookingFor(farm, 2), async () => ({ inserted: false }));
    expect(outcome).toMatchObject({ result: 'rolled_back', reason: 'not_inserted' });
    expect(await jobCores(farm.job)).toEqual(before);
  });

  it('refuses to insert once the lease deadline is too close, and gives the cores back', async () => {
    const c = client();
    const before = await jobCores(farm.job);
    let inserted = false;
    // The clock as seen 119 s later: 1 s left of the 120 s lease, under the 2 s margin.
    const outcome = await c.withBooking(
      bookingFor(farm, 2),
      async () => {
        inserted = true;
        return { inserted: true, value: null };
      },
      { now: () => Date.now() + 119_000 },
    );
    expect(inserted).toBe(false);
    expect(outcome).toMatchObject({ result: 'rolled_back', reason: 'too_late' });
    expect(await jobCores(farm.job)).toEqual(before);
  });

  it('confirms when the insert failed in an unknown way (over-count, never under-count) and rethrows', async () => {
    const c = client();
    const before = await jobCores(farm.job);
    await expect(
      c.withBooking(bookingFor(farm, 1), async () => {
        throw new Error('connection lost during COMMIT');
      }),
    ).rejects.toThrow(/COMMIT/);
    expect(await jobCores(farm.job)).toEqual({ cores: before.cores + 1, inflight: 0 });
  });

  it('passes a limit refusal through without calling the insert', async () => {
    const c = client();
    const outcome = await c.withBooking(bookingFor(farm, 50), async () => {
      throw new Error('must not be called');
    });
    expect(outcome).toMatchObject({ result: 'limit_exceeded', table: 'job' });
  });
});

describe('the packed package', () => {
  it('installs elsewhere, imports without building, type-checks, and runs the scheduler example', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cueacct-pack-'));
    try {
      const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], {
        cwd: ROOT,
        encoding: 'utf8',
      })
        .trim()
        .split('\n')
        .pop()!;
      const installed = path.join(dir, 'app', 'node_modules', 'cueacct');
      mkdirSync(installed, { recursive: true });
      execFileSync('tar', ['-xzf', path.join(dir, tarball), '-C', installed, '--strip-components=1']);
      // The client needs no runtime dependency; types need @types/node for the consumer's tsc.
      symlinkSync(path.join(ROOT, 'node_modules', '@types'), path.join(dir, 'app', 'node_modules', '@types'));
      const app = path.join(dir, 'app');
      writeFileSync(path.join(app, 'package.json'), '{"type":"module","private":true}');
      const example = readFileSync(path.join(ROOT, 'docs/examples/scheduler.ts'), 'utf8');
      writeFileSync(path.join(app, 'scheduler.ts'), example);
      writeFileSync(
        path.join(app, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2023',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            types: ['node'],
            noEmit: true,
            skipLibCheck: true,
          },
          files: ['scheduler.ts'],
        }),
      );
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', app], {
        encoding: 'utf8',
      });
      execFileSync(
        path.join(ROOT, 'node_modules/.bin/esbuild'),
        [
          path.join(app, 'scheduler.ts'),
          `--outfile=${path.join(app, 'scheduler.js')}`,
          '--format=esm',
          '--platform=node',
        ],
        { encoding: 'utf8' },
      );
      const { show, alloc, folder, job } = exampleFarm;
      const out = execFileSync(process.execPath, [path.join(app, 'scheduler.js')], {
        cwd: app,
        encoding: 'utf8',
        env: {
          ...process.env,
          CUEACCT_URL: daemon.url,
          CUEACCT_EXAMPLE_KEYS: JSON.stringify({ show, alloc, folder, job }),
        },
      });
      // Burst 14, four 4-core frames in one batch: two confirmed, the failing launch rolled
      // back, the fourth refused by the burst (the third still held its cores when it booked).
      expect(JSON.parse(out)).toEqual({ confirmed: 2, rolled_back: 1, limit_exceeded: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('docs/api.md includes the example verbatim', () => {
    const doc = readFileSync(path.join(ROOT, 'docs/api.md'), 'utf8');
    const example = readFileSync(path.join(ROOT, 'docs/examples/scheduler.ts'), 'utf8');
    expect(doc).toContain(`\`\`\`ts\n${example}\`\`\``);
  });
});
