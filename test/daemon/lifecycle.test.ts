/**
 * Issue 11: hard caps hold through the farm's whole lifecycle — job kill, job launch, bookings
 * naming the wrong path, job moves, deleted subscriptions, finished jobs — through the real
 * daemon (`cueacct serve`, the built CLI: `npm run build` first) against a real PostgreSQL.
 * Each case is the reproduction; each fails on the code before the change.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { createFolder, createJob, createProc } from '../../src/db/fixtures.js';
import { releaseProcs } from '../../src/db/notify.js';
import { rewriteAccountingTables } from '../../src/db/rewrite.js';
import { QUIET_DAEMON, cli, createNamedFarm, json, type NamedFarm } from '../commands/support.js';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/db.js';
import { api, startDaemon, type Daemon } from '../support/daemon.js';
import { bookingFor } from '../support/service.js';

let db: TestDatabase;
let daemon: Daemon | undefined;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
});
afterAll(async () => {
  await db?.drop();
});

let farms = 0;
/** A managed show of its own per test (names are unique per database). */
function farm(options: Omit<Parameters<typeof createNamedFarm>[1], 'show' | 'managed'>): Promise<NamedFarm> {
  return createNamedFarm(db.sql, { show: `life${++farms}`, managed: true, ...options });
}

async function serve(): Promise<Daemon> {
  daemon = await startDaemon({ databaseUrl: db.url, args: QUIET_DAEMON });
  await waitFor(async () => (await api(daemon!, 'GET', '/v1/status')).body.ready === true, {
    timeoutMs: 20_000,
    message: 'daemon ready',
  });
  return daemon;
}

function book(f: NamedFarm, cores: number, overrides: Record<string, unknown> = {}) {
  return api(daemon!, 'POST', '/v1/book', { ...bookingFor(f, cores), ...overrides });
}

async function recompute(): Promise<void> {
  const answer = await api(daemon!, 'POST', '/v1/admin/recompute');
  expect(answer.status, JSON.stringify(answer.body)).toBe(200);
}

async function vertex(kind: 'subscription' | 'folder' | 'job', key: string) {
  const state = await api(daemon!, 'GET', `/v1/state?vertex=${kind}`);
  return (state.body.vertices as { key: string; cores: number; max_cores: number }[]).find(
    (v) => v.key === key,
  );
}

async function counts(): Promise<{ subscription: number; folder: number; job: number }> {
  return (await api(daemon!, 'GET', '/v1/status')).body.counts;
}

describe('item 1: a killed job is not subtracted twice', () => {
  it('FINISHED, then a recompute, then the releases: the counter stays right and a booking past the burst is refused', async () => {
    // 4 cores run on the job (2 procs); the subscription's burst is 10.
    const f = await farm({ burst: 10, procs: [{ centicores: 200 }, { centicores: 200 }] });
    const other = await createJob(db.sql, { folder: f.folder, name: `${f.showName}-other` });
    await serve();
    expect((await vertex('subscription', `${f.show}/${f.alloc}`))?.cores).toBe(4);

    // Cuebot kills the job: FINISHED first, its procs deleted (with releases) seconds later.
    await db.sql`UPDATE job SET str_state = 'FINISHED' WHERE pk_job = ${f.job}`;
    await recompute();
    // The 4 cores still run: the store must still count them, and the PG rewrite too.
    expect((await vertex('subscription', `${f.show}/${f.alloc}`))?.cores).toBe(4);
    expect((await vertex('job', f.job))?.cores).toBe(4);
    const [row] = await db.sql<{ cores: number }[]>`
      SELECT int_cores AS cores FROM subscription WHERE pk_show = ${f.show}`;
    expect(row!.cores).toBe(400);
    expect((await book(f, 10, { job: other })).body).toMatchObject({
      result: 'limit_exceeded',
      table: 'subscription',
      current: 4,
      limit: 10,
    });
    expect((await book(f, 6, { job: other })).body.result).toBe('applied');

    // The releases arrive: subtracted once, not twice.
    await releaseProcs(db.sql, f.procs, 100);
    await waitFor(async () => (await vertex('subscription', `${f.show}/${f.alloc}`))?.cores === 6, {
      timeoutMs: 10_000,
      message: 'releases applied',
    });
    expect((await book(f, 5, { job: other })).body).toMatchObject({ table: 'subscription', current: 6 });
    expect((await book(f, 4, { job: other })).body.result).toBe('applied');
  });

  it('the cron audit of a farm with a killed job whose procs still run reports no drift', async () => {
    const f = await farm({ burst: 10, procs: [{ centicores: 300 }] });
    // The tables hold what Cuebot's own bookkeeping holds: the 3 cores of the running proc.
    await rewriteAccountingTables(db.sql, { kind: 'managed' });
    await db.sql`UPDATE job SET str_state = 'FINISHED' WHERE pk_job = ${f.job}`;
    const result = await cli(['recompute', '--database-url', db.url, '--dry-run', '--skip-daemon', '--json']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(json(result).drift).toEqual([]);
  });
});

describe('item 2: new jobs, folders and subscriptions never fail open', () => {
  it('a job created after the cap read is checked against its own caps from its first booking', async () => {
    const f = await farm({ burst: 1000 });
    await serve();
    const capped = await createJob(db.sql, { folder: f.folder, maxCoresCenticores: 400 });
    expect((await book(f, 5, { job: capped })).body).toMatchObject({
      result: 'limit_exceeded',
      table: 'job',
      current: 0,
      limit: 4,
    });
    // The schema's default caps a new job at 100 cores / 100 GPUs.
    const defaulted = await createJob(db.sql, { folder: f.folder });
    expect((await book(f, 150, { job: defaulted })).body).toMatchObject({ table: 'job', limit: 100 });
    expect((await book(f, 0, { job: defaulted, gpus: 150 })).body).toMatchObject({
      table: 'job_gpus',
      limit: 100,
    });
    expect((await book(f, 4, { job: capped })).body.result).toBe('applied');
  });

  it('a folder created after the cap read is checked against its caps', async () => {
    const f = await farm({ burst: 1000 });
    await serve();
    const folder = await createFolder(db.sql, { show: f.show, maxCoresCenticores: 400 });
    const job = await createJob(db.sql, { folder });
    expect((await book(f, 5, { folder, job })).body).toMatchObject({ table: 'folder', limit: 4 });
    expect((await book(f, 4, { folder, job })).body.result).toBe('applied');
  });

  it('concurrent first bookings of a new job wait for one read and never pass its cap', async () => {
    const f = await farm({ burst: 1000 });
    await serve();
    const job = await createJob(db.sql, { folder: f.folder, maxCoresCenticores: 400 });
    const answers = await Promise.all(Array.from({ length: 12 }, () => book(f, 1, { job })));
    expect(answers.filter((a) => a.body.result === 'applied')).toHaveLength(4);
    expect(answers.filter((a) => a.body.table === 'job')).toHaveLength(8);
  });

  it('keys that do not exist are refused with a clear error and create nothing', async () => {
    const f = await farm({ burst: 1000 });
    await serve();
    const before = await counts();
    const junk = () => randomBytes(100).toString('hex');
    const single = await book(f, 1, { job: junk(), folder: junk() });
    expect(single.status).toBe(404);
    expect(single.body).toMatchObject({ error: 'unknown_job' });
    expect((await book(f, 1, { folder: junk() })).body).toEqual({
      error: 'wrong_folder',
      job: f.job,
      folder: f.folder,
    });
    expect((await book(f, 1, { alloc: junk() })).body).toMatchObject({
      error: 'unknown_subscription',
      show: f.show,
    });
    for (let batch = 0; batch < 5; batch++) {
      const ops = Array.from({ length: 50 }, () => ({
        op: 'book',
        show: f.show,
        alloc: f.alloc,
        folder: junk(),
        job: junk(),
        cores: 1,
        gpus: 0,
      }));
      const answer = await api(daemon!, 'POST', '/v1/batch', { ops });
      expect(answer.status).toBe(200);
      for (const entry of answer.body.results)
        expect(entry).toMatchObject({ status: 404, error: 'unknown_job' });
    }
    await recompute();
    expect(await counts()).toEqual(before);
  });

  it('a job of a show that is not scheduler-managed is refused and gets no vertex', async () => {
    const f = await farm({ burst: 1000 });
    const legacy = await createNamedFarm(db.sql, { show: `legacy${++farms}`, managed: false, burst: 10 });
    await serve();
    const before = await counts();
    expect((await book(f, 1, { job: legacy.job })).body).toMatchObject({
      error: 'unknown_job',
      job: legacy.job,
    });
    expect(await counts()).toEqual(before);
  });

  it('a read that takes longer than the bound answers a retryable 503, then the booking goes through', async () => {
    const f = await farm({ burst: 1000 });
    await serve();
    const job = await createJob(db.sql, { folder: f.folder, maxCoresCenticores: 400 });
    const locker = await db.sql.reserve();
    try {
      await locker`BEGIN`;
      await locker`LOCK TABLE job IN ACCESS EXCLUSIVE MODE`;
      const answer = await fetch(`${daemon!.url}/v1/book`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ show: f.show, alloc: f.alloc, folder: f.folder, job, cores: 5, gpus: 0 }),
      });
      expect(answer.status).toBe(503);
      expect(Number(answer.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(await answer.json()).toMatchObject({ error: 'resolving', retry_after_ms: expect.any(Number) });
    } finally {
      await locker`ROLLBACK`;
      locker.release();
    }
    await waitFor(async () => (await book(f, 5, { job })).body.table === 'job', {
      timeoutMs: 10_000,
      message: 'resolved after the lock',
    });
  });
});

describe('item 3: the booking path is checked against the job', () => {
  it('a job booked under a folder it does not belong to, or another show, is refused naming the right one', async () => {
    const f = await farm({ burst: 1000, jobCores: 4 });
    const g = await farm({ burst: 1000 });
    const uncapped = await createFolder(db.sql, { show: f.show });
    await serve();
    const wrongFolder = await book(f, 5, { folder: uncapped });
    expect(wrongFolder.status).toBe(409);
    expect(wrongFolder.body).toEqual({ error: 'wrong_folder', job: f.job, folder: f.folder });
    const wrongShow = await book(f, 5, { show: g.show, alloc: g.alloc, folder: g.folder });
    expect(wrongShow.status).toBe(409);
    expect(wrongShow.body).toEqual({ error: 'wrong_show', job: f.job, show: f.show });
    expect((await vertex('job', f.job))?.cores).toBe(0);
    expect((await vertex('folder', uncapped))?.cores ?? 0).toBe(0);
    expect((await book(f, 5)).body).toMatchObject({ table: 'job', limit: 4 });
  });
});

describe('item 4: a job moved to another folder charges its new folder', () => {
  it('the first booking naming the new folder moves the job with its usage, then checks', async () => {
    // J runs 8 cores in folder A; folder B (cap 10) runs 2 cores of job K.
    const f = await farm({ burst: 1000, procs: [{ centicores: 800 }] });
    const b = await createFolder(db.sql, { show: f.show, maxCoresCenticores: 1000 });
    const k = await createJob(db.sql, { folder: b });
    await createProc(db.sql, { host: f.host, job: k, coresCenticores: 200 });
    await serve();
    await db.sql`UPDATE job SET pk_folder = ${b} WHERE pk_job = ${f.job}`;
    // B now holds 10 cores: one more core of J is refused, and so is one of K.
    expect((await book(f, 1, { folder: b })).body).toMatchObject({ table: 'folder', current: 10, limit: 10 });
    expect((await book(f, 1, { folder: b, job: k })).body).toMatchObject({ table: 'folder', current: 10 });
    expect((await vertex('folder', f.folder))?.cores).toBe(0);
    // A stale client naming the old folder is told the new one.
    expect((await book(f, 1)).body).toEqual({ error: 'wrong_folder', job: f.job, folder: b });
  });

  it("a recompute applies a move no booking saw, with the job's booking still in flight", async () => {
    // J runs 8 cores in folder A and has 2 more booked (in flight); folder B is capped at 10.
    const f = await farm({ burst: 1000, procs: [{ centicores: 800 }] });
    const b = await createFolder(db.sql, { show: f.show, maxCoresCenticores: 1000 });
    const k = await createJob(db.sql, { folder: b });
    await serve();
    expect((await book(f, 2)).body.result).toBe('applied');
    await db.sql`UPDATE job SET pk_folder = ${b} WHERE pk_job = ${f.job}`;
    await recompute();
    // B holds J's 8 running cores and its 2 in flight: full.
    expect((await vertex('folder', b))?.cores).toBe(10);
    expect((await book(f, 1, { folder: b, job: k })).body).toMatchObject({ table: 'folder', current: 10 });
    expect((await vertex('folder', f.folder))?.cores).toBe(0);
  });
});

describe('item 5: a deleted subscription fails closed at the next recompute', () => {
  it('is refused after the recompute, not after the reseed', async () => {
    const f = await farm({ burst: 1000 });
    await serve();
    expect((await book(f, 1)).body.result).toBe('applied');
    await db.sql`DELETE FROM subscription WHERE pk_show = ${f.show} AND pk_alloc = ${f.alloc}`;
    await recompute();
    const answer = await book(f, 1);
    expect(answer.body.result).not.toBe('applied');
    expect(answer.body).toMatchObject({ error: 'unknown_subscription', show: f.show, alloc: f.alloc });
  });
});

describe('item 9: finished jobs are forgotten', () => {
  it('jobs launched and finished leave the store two recomputes later', async () => {
    const f = await farm({ burst: 10_000 });
    await serve();
    const baseline = await counts();
    const jobs: string[] = [];
    for (let i = 0; i < 40; i++) jobs.push(await createJob(db.sql, { folder: f.folder }));
    // Each job is launched through the API (book, proc insert, confirm), then killed.
    const booked = await api(daemon!, 'POST', '/v1/batch', {
      ops: jobs.map((job) => ({
        op: 'book',
        show: f.show,
        alloc: f.alloc,
        folder: f.folder,
        job,
        cores: 1,
        gpus: 0,
      })),
    });
    const ids = (booked.body.results as { result: string; booking: string }[]).map((r) => {
      expect(r.result).toBe('applied');
      return r.booking;
    });
    const procs: string[] = [];
    for (const job of jobs)
      procs.push((await createProc(db.sql, { host: f.host, job, coresCenticores: 100 })).id);
    await api(daemon!, 'POST', '/v1/batch', { ops: ids.map((booking) => ({ op: 'confirm', booking })) });
    expect((await counts()).job).toBe(baseline.job + jobs.length);
    const live = jobs.slice(0, 2);
    const finished = jobs.slice(2);
    await db.sql`UPDATE job SET str_state = 'FINISHED' WHERE pk_job = ANY(${finished})`;
    await releaseProcs(db.sql, procs.slice(2), 100);
    await waitFor(async () => (await vertex('subscription', `${f.show}/${f.alloc}`))?.cores === 2, {
      timeoutMs: 10_000,
      message: 'releases applied',
    });
    await recompute();
    await recompute();
    expect((await counts()).job).toBe(baseline.job + live.length);
    expect((await vertex('subscription', `${f.show}/${f.alloc}`))?.cores).toBe(2);
  });
});
