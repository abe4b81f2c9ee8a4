/**
 * `cueacct recompute` (the cron audit) as a real process against a harness database, then
 * against a live daemon. Run `npm run build` first: the CLI and the daemon run from build/.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { createProc } from '../../src/db/fixtures.js';
import { rewriteAccountingTables } from '../../src/db/rewrite.js';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/db.js';
import { api, startDaemon, type Daemon } from '../support/daemon.js';
import { QUIET_DAEMON, cli, closedPort, createNamedFarm, json, oneLine, type NamedFarm } from './support.js';

let db: TestDatabase;
let farm: NamedFarm;
let legacy: NamedFarm;

async function exact(): Promise<void> {
  await rewriteAccountingTables(db.sql, { kind: 'managed' });
  await rewriteAccountingTables(db.sql, { kind: 'show', show: legacy.show });
}

async function jobRow() {
  const [row] = await db.sql<{ cores: string; max: number }[]>`
    SELECT int_cores::text AS cores, int_max_cores AS max FROM job_resource WHERE pk_job = ${farm.job}`;
  return row!;
}

beforeAll(async () => {
  db = await createTestDatabase();
  // 6 cores and 1 GPU booked on the managed show, 3 cores on the Cuebot one.
  farm = await createNamedFarm(db.sql, {
    show: 'auditshow',
    managed: true,
    burst: 100,
    jobCores: 50,
    procs: [{ centicores: 250, gpus: 1 }, { centicores: 350 }],
  });
  legacy = await createNamedFarm(db.sql, {
    show: 'legacyshow',
    managed: false,
    burst: 100,
    procs: [{ centicores: 300 }],
  });
  await exact();
});
afterAll(async () => {
  await db?.drop();
});

const audit = (...args: string[]) => cli(['recompute', '--database-url', db.url, ...args]);

describe('cueacct recompute against the database (no daemon)', () => {
  afterEach(exact);

  it('is quiet when there is no drift: no output, exit 0; --verbose and --json report', async () => {
    const quiet = await audit('--dry-run', '--skip-daemon');
    expect(quiet).toEqual({ code: 0, stdout: '', stderr: '' });

    const verbose = await audit('--dry-run', '--skip-daemon', '--verbose');
    expect(verbose.code).toBe(0);
    expect(verbose.stdout).toMatch(
      /^No drift: 6 PG rows of 1 scheduler-managed show; no daemon: store not compared\.$/m,
    );
    expect(verbose.stdout).toContain(
      'checked: subscription 1, folder_resource 1, job_resource 1, layer_resource 2, point 1',
    );

    const result = json(await audit('--dry-run', '--skip-daemon', '--json'));
    expect(result).toEqual({
      ok: true,
      dry_run: true,
      scope: { kind: 'managed', shows: [{ id: farm.show, name: 'auditshow', managed: true }] },
      multiplier: 100,
      checked: {
        tables: { subscription: 1, folder_resource: 1, job_resource: 1, layer_resource: 2, point: 1 },
        daemon_vertices: 0,
      },
      daemon: { url: null, comparison: 'skipped', error: null, last_recompute_ok: null },
      drift: [],
      lag: [],
      problems: [],
      repair: null,
      duration_ms: expect.any(Number),
    });
  });

  it('reports a seeded drift with exit 1 and writes nothing; recompute repairs it; the next dry run exits 0', async () => {
    await db.sql`UPDATE folder_resource SET int_cores = 99900 WHERE pk_folder = ${farm.folder}`;
    await db.sql`UPDATE subscription SET int_cores = 0, int_gpus = 0 WHERE pk_show = ${farm.show}`;
    await db.sql`UPDATE job_resource SET int_cores = 500 WHERE pk_job = ${farm.job}`;

    const dry = await audit('--dry-run', '--skip-daemon');
    expect(dry.code, dry.stderr).toBe(1);
    expect(dry.stderr).toBe('');
    const lines = dry.stdout.split('\n');
    expect(lines[0]).toBe(
      'Drift found in 3 keys (3 PG table rows, 0 daemon vertices off): 6 PG rows of 1 scheduler-managed show; ' +
        'no daemon: store not compared.',
    );
    const table = lines.slice(2, 6);
    expect(table[0]).toMatch(/^VERTEX\s+SHOW\s+NAME\s+EXPECTED\s+PG TABLE\s+DAEMON\s+DRIFT$/);
    // Largest first, with human names.
    expect(table[1]).toMatch(/^folder\s+auditshow\s+auditshow-folder\s+6c 1g\s+999c 1g\s+-\s+table \+993c$/);
    expect(table[2]).toMatch(
      /^subscription\s+auditshow\s+auditshow\.alloc\s+6c 1g\s+0c 0g\s+-\s+table -6c -1g$/,
    );
    expect(table[3]).toMatch(/^job\s+auditshow\s+auditshow-job\s+6c 1g\s+5c 1g\s+-\s+table -1c$/);
    // --dry-run wrote nothing.
    expect((await jobRow()).cores).toBe('500');

    const asJson = json(await audit('--dry-run', '--skip-daemon', '--json'));
    expect(asJson.ok).toBe(false);
    expect(asJson.drift.map((e: any) => e.vertex)).toEqual(['folder', 'subscription', 'job']);
    expect(asJson.drift[2]).toEqual({
      vertex: 'job',
      key: farm.job,
      show: farm.show,
      show_name: 'auditshow',
      managed: true,
      name: 'auditshow-job',
      expected: { cores: 6, gpus: 1 },
      pg: { cores: 5, gpus: 1 },
      daemon: null,
      pg_drift: { cores: -1, gpus: 0 },
      daemon_drift: null,
      counted: true,
    });

    const repair = await audit('--skip-daemon');
    expect(repair.code, repair.stderr).toBe(1);
    expect(repair.stdout).toContain(
      'Repair: rewrote 3 PG rows from SUM(proc) (subscription 1, folder_resource 1, job_resource 1).',
    );
    expect(repair.stdout).toContain('After the repair: no drift.');
    expect((await jobRow()).cores).toBe('600');

    expect(await audit('--dry-run', '--skip-daemon')).toEqual({ code: 0, stdout: '', stderr: '' });
  });

  it("repairs through Cuebot's triggers when usage is above a lowered cap, leaving the cap as it was", async () => {
    await db.sql`UPDATE job_resource SET int_max_cores = 100, int_cores = 0 WHERE pk_job = ${farm.job}`;
    try {
      const dry = await audit('--dry-run', '--skip-daemon');
      expect(dry.code).toBe(1);
      expect(dry.stdout).toMatch(/^job\s+auditshow\s+auditshow-job\s+6c 1g\s+0c 1g\s+-\s+table -6c$/m);

      const repair = await audit('--skip-daemon', '--json');
      expect(repair.code, repair.stderr).toBe(1);
      expect(json(repair).repair).toEqual({
        rewritten: { subscription: 0, folder_resource: 0, job_resource: 1, layer_resource: 0, point: 0 },
        daemon_recompute: 'skipped',
        daemon_error: null,
        remaining: 0,
      });
      expect(await jobRow()).toEqual({ cores: '600', max: 100 });
    } finally {
      await db.sql`UPDATE job_resource SET int_max_cores = 5000 WHERE pk_job = ${farm.job}`;
    }
  });

  it('--all-shows audits Cuebot-owned shows too but repairs only managed ones; --show scopes to one show', async () => {
    await db.sql`UPDATE point SET int_cores = 0 WHERE pk_show = ${legacy.show}`;
    expect((await audit('--dry-run', '--skip-daemon')).code).toBe(0);

    const all = await audit('--dry-run', '--skip-daemon', '--all-shows');
    expect(all.code).toBe(1);
    expect(all.stdout).toContain('of all 2 shows');
    expect(all.stdout).toMatch(/^point\s+legacyshow\s+dept-\S+\s+3c\s+0c\s+-\s+table -3c$/m);

    const one = await audit('--skip-daemon', '--show', 'legacyshow');
    expect(one.code).toBe(1);
    expect(one.stdout).toContain('of show legacyshow');
    expect(one.stdout).toContain(
      'Repair: nothing rewritten (no scheduler-managed show in scope; Cuebot owns those tables).',
    );
    expect(one.stdout).toContain('After the repair: 1 finding remain');
    const [point] = await db.sql<
      { cores: number }[]
    >`SELECT int_cores AS cores FROM point WHERE pk_show = ${legacy.show}`;
    expect(point!.cores).toBe(0);
  });

  it('usage errors exit 2; an unreachable database or a daemon asked for explicitly exits 3', async () => {
    const unknown = await audit('--dry-run', '--skip-daemon', '--show', 'nope');
    expect(unknown.code).toBe(2);
    expect(oneLine(unknown.stderr)).toBe(
      'cueacct recompute: unknown show "nope": no show has that name or id',
    );

    const both = await audit('--show', 'x', '--all-shows');
    expect(both.code).toBe(2);

    const port = await closedPort();
    const noDb = await cli([
      'recompute',
      '--dry-run',
      '--database-url',
      `postgres://postgres@127.0.0.1:${port}/x`,
    ]);
    expect(noDb.code).toBe(3);
    expect(oneLine(noDb.stderr)).toMatch(
      /^cueacct recompute: cannot reach the database at .*: ECONNREFUSED$/,
    );

    const noDaemon = await audit('--dry-run', '--daemon', `http://127.0.0.1:${port}`);
    expect(noDaemon.code).toBe(3);
    expect(oneLine(noDaemon.stderr)).toBe(
      `cueacct recompute: cannot reach daemon at http://127.0.0.1:${port}: ECONNREFUSED`,
    );
    const fromEnv = await cli(['recompute', '--dry-run', '--database-url', db.url], {
      CUEACCT_DAEMON: `http://127.0.0.1:${port}`,
    });
    expect(fromEnv.code).toBe(3);
  });
});

describe('cueacct recompute with a live daemon', () => {
  let daemon: Daemon;
  const withDaemon = (...args: string[]) => audit('--daemon', daemon.url, ...args);

  beforeAll(async () => {
    await exact();
    daemon = await startDaemon({ databaseUrl: db.url, args: QUIET_DAEMON });
    // Ready (the lock-delay has passed) and after its first recompute.
    await waitFor(
      async () => {
        const { body } = await api(daemon, 'GET', '/v1/status');
        return body.ready === true && body.last_recompute?.ok === true;
      },
      {
        timeoutMs: 15_000,
        message: 'daemon ready after its first recompute',
      },
    );
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it('finds no drift while a booking is in flight (the carried part is allowed)', async () => {
    const booked = await api(daemon, 'POST', '/v1/book', {
      show: farm.show,
      alloc: farm.alloc,
      folder: farm.folder,
      job: farm.job,
      cores: 4,
      gpus: 0,
    });
    expect(booked.body.result).toBe('applied');
    try {
      expect(await withDaemon('--dry-run')).toEqual({ code: 0, stdout: '', stderr: '' });
      const result = json(await withDaemon('--dry-run', '--json'));
      expect(result.daemon).toMatchObject({
        url: daemon.url,
        comparison: 'compared',
        last_recompute_ok: true,
      });
      expect(result.checked.daemon_vertices).toBe(3);
    } finally {
      await api(daemon, 'POST', '/v1/rollback', { booking: booked.body.booking });
    }
  });

  it('reports a daemon store behind SUM(proc) with exit 1; recompute asks the daemon to heal it', async () => {
    // A proc the daemon never booked (and whose PG rows nobody updated).
    await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 200 });
    const dry = await withDaemon('--dry-run');
    expect(dry.code, dry.stderr).toBe(1);
    expect(dry.stdout).toContain(`daemon at ${daemon.url}: 3 vertices compared`);
    expect(dry.stdout).toMatch(
      /^job\s+auditshow\s+auditshow-job\s+8c 1g\s+6c 1g\s+6c 1g\s+table -2c; daemon -2c$/m,
    );
    const result = json(await withDaemon('--dry-run', '--json'));
    const job = result.drift.find((e: any) => e.vertex === 'job');
    expect(job).toMatchObject({
      expected: { cores: 8, gpus: 1 },
      daemon: { cores: 6, gpus: 1, carried_cores: 0, carried_gpus: 0 },
      daemon_drift: { cores: -2, gpus: 0 },
      counted: true,
    });

    const repair = await withDaemon();
    expect(repair.code, repair.stderr).toBe(1);
    expect(repair.stdout).toContain('Repair: the daemon ran a recompute pass.');
    expect(repair.stdout).toContain('After the repair: no drift.');
    expect(await withDaemon('--dry-run')).toEqual({ code: 0, stdout: '', stderr: '' });
    const state = await api(daemon, 'GET', `/v1/state?vertex=job&show=auditshow`);
    expect(state.body.vertices[0]).toMatchObject({ cores: 8 });
  });

  it('counts display lag of a managed show only with --strict', async () => {
    await db.sql`UPDATE folder_resource SET int_cores = 0 WHERE pk_folder = ${farm.folder}`;
    expect(await withDaemon('--dry-run')).toEqual({ code: 0, stdout: '', stderr: '' });
    const verbose = await withDaemon('--dry-run', '--verbose');
    expect(verbose.code).toBe(0);
    expect(verbose.stdout).toContain('1 PG row of scheduler-managed shows trails SUM(proc)');
    expect(verbose.stdout).toMatch(
      /^folder\s+auditshow\s+auditshow-folder\s+8c 1g\s+0c 1g\s+8c 1g\s+table -8c$/m,
    );
    const lag = json(await withDaemon('--dry-run', '--json'));
    expect(lag).toMatchObject({ ok: true, drift: [], lag: [{ vertex: 'folder', counted: false }] });

    const strict = await withDaemon('--dry-run', '--strict');
    expect(strict.code).toBe(1);
    expect(strict.stdout).toMatch(/^Drift found in 1 key/);
    await exact();
  });

  it('reports a managed show the daemon has not published as a problem (exit 1)', async () => {
    // Flag set without acct_managed_change, and the daemon's refresh is an hour away.
    await db.sql`UPDATE show SET b_scheduler_managed = true WHERE pk_show = ${legacy.show}`;
    try {
      const r = await withDaemon('--dry-run');
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(
        'problem: show legacyshow is scheduler-managed in the database but the daemon has not published it',
      );
    } finally {
      await db.sql`UPDATE show SET b_scheduler_managed = false WHERE pk_show = ${legacy.show}`;
    }
  });
});
