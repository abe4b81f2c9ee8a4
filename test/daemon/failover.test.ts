/**
 * PostgreSQL primary failover with a real streaming standby (`pg_basebackup -R`, system
 * PostgreSQL binaries): the daemon, given both hosts in `--database-url` with
 * `target_session_attrs=read-write`, fails closed while there is no primary, follows the
 * promoted standby, takes the lock there, runs its catch-up recompute and is exact again — and no
 * booking accepted at any moment takes a cap past its limit.
 *
 * Run `npm run build` first: the daemon and the CLI run from build/.
 */
import type { Sql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';

import { openPool } from '../../src/db/connection.js';
import { createFrame, createLayer, createProc } from '../../src/db/fixtures.js';
import { cli, closedPort, oneLine } from '../commands/support.js';
import { createDatabaseOn, waitFor, type TestDatabase } from '../support/db.js';
import { api, startDaemon, waitReady, type Daemon } from '../support/daemon.js';
import { replicaBinariesPresent, startReplicatedPair, type ReplicatedPair } from '../support/replica.js';
import { bookingFor, createSmallFarm, type SmallFarm } from '../support/service.js';

const JOB_CAP = 16;
/**
 * The job's cap as lowered on the primary just before it crashes, with the acct_limit_change
 * NOTIFY lost in the crash (committed and replicated, never delivered): only the daemon's
 * catch-up reseed on the new primary can learn it.
 */
const LOWERED_JOB_CAP = 12;
const BURST = 40;
/** Bookings made (and their procs committed) before the primary is crashed. */
const BEFORE_CRASH = 6;
/** The load does not run further ahead than this before the crash (it stays under the lowered cap). */
const LOAD_AHEAD = 4;
/** Frames prepared up front, so the "scheduler" writes only proc rows during the failover. */
const FRAMES = 30;

let pair: ReplicatedPair;
let db: TestDatabase & { name: string };
let farm: SmallFarm;
let layer: string;
let frames: string[];
let daemon: Daemon | undefined;
/** The "scheduler": a pool on the multi-host URL, as the daemon has. */
let scheduler: Sql | undefined;

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms),
    ),
  ]);

async function ready(d: Daemon): Promise<boolean> {
  return (await api(d, 'GET', '/readyz')).status === 200;
}

/** SUM(proc) of the farm's job and subscription, in whole cores, on the current primary. */
async function sums(sql: Sql): Promise<{ job: number; subscription: number; procs: number }> {
  const [row] = await sql<{ job: number; sub: number; procs: number }[]>`
    SELECT (COALESCE(SUM(p.int_cores_reserved) FILTER (WHERE p.pk_job = ${farm.job}), 0) / 100)::int AS job,
           (COALESCE(SUM(p.int_cores_reserved), 0) / 100)::int AS sub,
           count(*)::int AS procs
      FROM proc p JOIN host h ON h.pk_host = p.pk_host
     WHERE p.pk_show = ${farm.show} AND h.pk_alloc = ${farm.alloc} AND NOT p.b_local`;
  return { job: row!.job, subscription: row!.sub, procs: row!.procs };
}

async function daemonCores(d: Daemon, vertex: 'job' | 'subscription'): Promise<number> {
  const state = await api(d, 'GET', `/v1/state?vertex=${vertex}&show=${farm.show}`);
  expect(state.status).toBe(200);
  return state.body.vertices[0].cores as number;
}

/** Cuebot lowering a job's max cores, its NOTIFY lost (see LOWERED_JOB_CAP). */
async function lowerJobCapSilently(sql: Sql, cores: number): Promise<void> {
  await sql`UPDATE job_resource SET int_max_cores = ${cores * 100} WHERE pk_job = ${farm.job}`;
}

interface Outcome {
  booking: string;
  at: number;
  /** 'confirmed': its proc row committed; 'rolled_back': the insert failed and left no row. */
  end: 'confirmed' | 'rolled_back';
}

const present = replicaBinariesPresent();

beforeAll(async () => {
  if (!present) return;
  pair = await startReplicatedPair();
  db = await createDatabaseOn(pair.urlOf(pair.primary, 'postgres'), { namePrefix: 'cueacct_fo_' });
  farm = await createSmallFarm(db.sql, {
    managed: true,
    burst: BURST,
    jobCores: JOB_CAP,
    showName: 'failover',
  });
  layer = await createLayer(db.sql, { job: farm.job });
  frames = [];
  for (let i = 0; i < FRAMES; i++) frames.push(await createFrame(db.sql, { layer, job: farm.job }));
}, 120_000);

afterAll(async () => {
  await daemon?.stop('SIGKILL');
  await scheduler?.end({ timeout: 0 });
  await db?.sql.end({ timeout: 0 });
  await pair?.stop();
});

describe.skipIf(!present)('PostgreSQL primary failover (promoted streaming standby)', () => {
  it('CLI commands take a multi-host URL and write to the primary even when the standby is listed first', async () => {
    const standbyFirst =
      `postgres://postgres@127.0.0.1:${pair.standby.port},127.0.0.1:${pair.primary.port}/${db.name}` +
      '?target_session_attrs=read-write';
    // Without --dry-run, recompute rewrites the PG accounting tables: on the standby that fails.
    const repair = await cli(['recompute', '--skip-daemon', '--database-url', standbyFirst]);
    expect(repair.stderr).toBe('');
    expect(repair.code).toBe(0);
    const audit = await cli([
      'recompute',
      '--dry-run',
      '--skip-daemon',
      '--json',
      '--database-url',
      standbyFirst,
    ]);
    expect(audit.code).toBe(0);
    expect(JSON.parse(audit.stdout)).toMatchObject({ ok: true, dry_run: true, drift: [] });

    // The same through the libpq variables: PGHOST=h1,h2 with one port per host.
    const pgEnv = {
      PGHOST: '127.0.0.1,127.0.0.1',
      PGPORT: `${pair.standby.port},${pair.primary.port}`,
      PGUSER: 'postgres',
      PGDATABASE: db.name,
      PGTARGETSESSIONATTRS: 'read-write',
    };
    const viaEnv = await cli(['recompute', '--skip-daemon'], pgEnv);
    expect(viaEnv.stderr).toBe('');
    expect(viaEnv.code).toBe(0);

    // No primary among the hosts (the standby and a closed port): postgres.js alone would go round
    // them forever; the command gives up after the connect timeout, one line, exit 3.
    const noPrimary = await cli(['recompute', '--dry-run', '--skip-daemon'], {
      ...pgEnv,
      PGPORT: `${pair.standby.port},${await closedPort()}`,
      PGCONNECT_TIMEOUT: '2',
    });
    expect(noPrimary.code).toBe(3);
    expect(oneLine(noPrimary.stderr)).toMatch(
      /^cueacct recompute: cannot reach the database at postgres:\/\/postgres@127\.0\.0\.1:\d+,127\.0\.0\.1:\d+\/\w+\?target_session_attrs=read-write \(from PG\* variables\): CONNECT_TIMEOUT$/,
    );
  }, 120_000);

  it('follows the promoted standby: fails closed without a primary, then exact and never past a cap', async () => {
    const url = pair.multiHostUrl(db.name);
    onTestFailed(() => {
      const log = daemon?.output().split('\n') ?? [];
      console.log(
        log
          .filter((line) => !line.includes('"path":"/'))
          .slice(-60)
          .join('\n'),
      );
    });
    daemon = await startDaemon({ databaseUrl: url });
    const d = daemon;
    // Ready means seeded, the listener connected and the lock serving (after its lock-delay).
    await waitReady(d);
    scheduler = openPool({ url }, 2, 'failover-test-scheduler');
    const sched = scheduler;

    const outcomes: Outcome[] = [];
    let frameIndex = 0;
    /** Book 1 core; if applied, insert its proc (as Cuebot's scheduler would) and confirm, else roll back. */
    const bookOne = async (): Promise<number> => {
      const booked = await api(d, 'POST', '/v1/book', bookingFor(farm, 1));
      if (booked.status !== 200) return booked.status;
      expect(booked.body.result).toBe('applied');
      const frame = frames[frameIndex++]!;
      try {
        await withTimeout(
          createProc(sched, { host: farm.host, job: farm.job, layer, frame }),
          60_000,
          'proc insert',
        );
      } catch {
        // The commit may have reached the standby before the primary died (synchronous
        // replication): ask the new primary whether the row exists before rolling back. Until
        // it is promoted the answer may come from nowhere or from the old primary shutting
        // down ("the database system is shutting down"): ask again until a primary answers.
        const { row } = await waitFor(
          async () => {
            const rows = await withTimeout(
              sched<{ x: number }[]>`SELECT 1 AS x FROM proc WHERE pk_frame = ${frame}`,
              10_000,
              'check',
            );
            return { row: rows[0] };
          },
          { timeoutMs: 60_000, message: 'a primary to answer whether the proc row exists' },
        );
        if (row === undefined) {
          expect((await api(d, 'POST', '/v1/rollback', { booking: booked.body.booking })).status).toBe(200);
          outcomes.push({ booking: booked.body.booking, at: Date.now(), end: 'rolled_back' });
          return 200;
        }
      }
      expect((await api(d, 'POST', '/v1/confirm', { booking: booked.body.booking })).status).toBe(200);
      outcomes.push({ booking: booked.body.booking, at: Date.now(), end: 'confirmed' });
      return 200;
    };

    for (let i = 0; i < BEFORE_CRASH; i++) expect(await bookOne()).toBe(200);

    // The scheduler keeps booking through the failover, so bookings are in flight at the crash.
    const statuses: { status: number; at: number }[] = [];
    let stopBooking = false;
    let crashing = false;
    const booker = (async () => {
      while (!stopBooking) {
        if (!crashing && outcomes.length >= BEFORE_CRASH + LOAD_AHEAD) {
          await waitFor(() => crashing || stopBooking, { timeoutMs: 30_000, message: 'the crash' });
        }
        const status = await bookOne();
        statuses.push({ status, at: Date.now() });
        // Stop once the cap is reached after the recovery.
        if (status === 409 && statuses.filter((s) => s.status === 409).length >= 3) return;
        if (status === 503) await new Promise((r) => setTimeout(r, 20)); // pacing, not synchronization
      }
    })();
    booker.catch(() => undefined); // fails where it is awaited below, never as an unhandled rejection
    let crashAt = 0,
      closedAt = 0,
      promoteAt = 0,
      promotedAt = 0,
      servingAt = 0;
    try {
      await waitFor(() => outcomes.length >= BEFORE_CRASH + 1, {
        timeoutMs: 10_000,
        message: 'a booking during load',
      });

      await lowerJobCapSilently(db.sql, LOWERED_JOB_CAP);
      crashing = true;
      crashAt = Date.now();
      await pair.crashPrimary();
      await waitFor(async () => !(await ready(d)), { timeoutMs: 15_000, message: 'daemon fails closed' });
      closedAt = Date.now();

      // No primary at all, for longer than the daemon's lock retry (1 s): every booking is refused
      // (fail closed), and no daemon connection settles on the standby — the lock "taken" on a hot
      // standby would be no lock at all (the old primary may still be alive behind a partition).
      const standby = openPool({ url: pair.urlOf(pair.standby, db.name) }, 1, 'failover-test-standby');
      try {
        const windowEnd = Date.now() + 2_500;
        while (Date.now() < windowEnd) {
          const attempt = await api(d, 'POST', '/v1/book', bookingFor(farm, 1));
          expect(attempt.status).toBe(503);
          expect(await ready(d)).toBe(false);
          const [locks] = await standby<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted`;
          expect(locks!.n, 'advisory lock held on the standby').toBe(0);
        }
      } finally {
        await standby.end({ timeout: 1 });
      }

      promoteAt = Date.now();
      await pair.promoteStandby();
      promotedAt = Date.now();
      await waitReady(d, { timeoutMs: 60_000 }); // serving the new primary
      servingAt = Date.now();

      await withTimeout(booker, 60_000, 'booking up to the cap after the failover');
      stopBooking = true;
    } finally {
      stopBooking = true;
      await withTimeout(booker, 70_000, 'the booking loop to stop').catch(() => undefined);
    }

    // Exact: the daemon's counters equal SUM(proc) on the new primary (nothing in flight)...
    const newPrimary = openPool({ url: pair.urlOf(pair.standby, db.name) }, 1, 'failover-test-check');
    try {
      const truth = await sums(newPrimary);
      expect(await daemonCores(d, 'job')).toBe(truth.job);
      expect(await daemonCores(d, 'subscription')).toBe(truth.subscription);
      // ...the job was booked right up to its cap and not past it...
      expect(truth.job).toBe(LOWERED_JOB_CAP);
      expect(truth.subscription).toBeLessThanOrEqual(BURST);
      // ...and the bookings the daemon accepted and the scheduler kept are exactly those procs.
      const kept = outcomes.filter((o) => o.end === 'confirmed').length;
      expect(kept).toBe(truth.procs);
      expect(kept).toBeLessThanOrEqual(LOWERED_JOB_CAP);
      // A recompute now finds no drift: the catch-up recompute already made the store exact.
      const recompute = await api(d, 'POST', '/v1/admin/recompute');
      expect(recompute.status).toBe(200);
      const status = await api(d, 'GET', '/v1/status');
      expect(status.body.last_recompute.drift.job).toEqual({ cores: 0, gpus: 0, keys: 0 });
      expect(status.body.lock_held).toBe(true);
      // The lock is held on the new primary by the daemon.
      const [lock] = await newPrimary<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND granted`;
      expect(lock!.n).toBe(1);
    } finally {
      await newPrimary.end({ timeout: 1 });
    }
    console.log(
      `failover timings (ms): crash→fail-closed ${closedAt - crashAt}, promote call→promoted ` +
        `${promotedAt - promoteAt}, promoted→serving ${servingAt - promotedAt}; bookings kept ` +
        `${outcomes.filter((o) => o.end === 'confirmed').length}, rolled back ` +
        `${outcomes.filter((o) => o.end === 'rolled_back').length}`,
    );

    // And the CLI follows too: the first host is dead, the second is the primary now.
    const audit = await cli(['recompute', '--dry-run', '--skip-daemon', '--json', '--database-url', url]);
    expect(audit.stderr).toBe('');
    expect(JSON.parse(audit.stdout)).toMatchObject({ dry_run: true });
  }, 240_000);
});
