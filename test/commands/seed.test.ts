/**
 * `cueacct seed` as a real process against a harness database (and a daemon for --daemon).
 * Run `npm run build` first: the CLI and the daemon run from build/.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startDaemon, waitReady } from '../support/daemon.js';
import { QUIET_DAEMON, cli, closedPort, createNamedFarm, json, oneLine, type NamedFarm } from './support.js';

let db: TestDatabase;
let managed: NamedFarm;
let cuebot: NamedFarm;

beforeAll(async () => {
  db = await createTestDatabase();
  // 2.5 + 2.5 + 1 cores booked: 6 whole cores (sum first, divide once).
  managed = await createNamedFarm(db.sql, {
    show: 'seedshow',
    managed: true,
    burst: 8,
    folderCores: 20,
    jobCores: 5,
    jobGpus: 4,
    procs: [{ centicores: 250, gpus: 1 }, { centicores: 250 }, { centicores: 100 }],
  });
  cuebot = await createNamedFarm(db.sql, {
    show: 'legacyshow',
    managed: false,
    burst: 50,
    procs: [{ centicores: 300 }],
  });
});
afterAll(async () => {
  await db?.drop();
});

describe('cueacct seed', () => {
  it('runs the bootstrap seed of the managed shows and prints booked vs cap with names', async () => {
    const r = await cli(['seed', '--database-url', db.url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(
      /^Ran the bootstrap seed of 1 scheduler-managed show in [\d.]+ (µs|ms|s): 1 subscription, 1 folder, 1 job/,
    );
    // Subscription: 6 of burst 8; job over its 5-core cap.
    expect(r.stdout).toMatch(/seedshow\s+seedshow\.alloc\s+6\s+8\s+75%/);
    expect(r.stdout).toMatch(/seedshow\s+seedshow-folder\s+6\s+20\s+1\s+unlimited\s+30%/);
    expect(r.stdout).toMatch(/seedshow\s+seedshow-job\s+6\s+5\s+1\s+4\s+120% OVER CAP/);
    expect(r.stdout).toContain('1 vertex is booked above its cap');
    expect(r.stdout).not.toContain('legacyshow');
  });

  it('--json: the documented shape', async () => {
    const r = await cli(['seed', '--database-url', db.url, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = json(r);
    expect(report).toMatchObject({
      mode: 'bootstrap',
      shows: [{ id: managed.show, name: 'seedshow', managed: true }],
      multiplier: 100,
      duration_ms: expect.any(Number),
      proc_groups: 1,
      counts: { subscription: 1, folder: 1, job: 1 },
    });
    expect(report.vertices).toHaveLength(3);
    // Fullest first: the job (120%), the subscription (75%), the folder (30%).
    expect(report.vertices.map((v: any) => v.kind)).toEqual(['job', 'subscription', 'folder']);
    expect(report.vertices[0]).toEqual({
      kind: 'job',
      key: managed.job,
      show: managed.show,
      show_name: 'seedshow',
      alloc: null,
      name: 'seedshow-job',
      cores: 6,
      gpus: 1,
      max_cores: 5,
      max_gpus: 4,
      utilization: 1.2,
      over_cap: true,
    });
    expect(report.vertices[1]).toMatchObject({
      kind: 'subscription',
      key: `${managed.show}/${managed.alloc}`,
      alloc: managed.alloc,
      name: 'seedshow.alloc',
      cores: 6,
      max_cores: 8,
      max_gpus: null,
    });
  });

  it('--show: the flip seed of one show, by name or id, also for a show Cuebot owns', async () => {
    const byName = await cli(['seed', '--database-url', db.url, '--show', 'legacyshow']);
    expect(byName.code, byName.stderr).toBe(0);
    expect(byName.stdout).toContain('the flip seed of show legacyshow');
    expect(byName.stdout).toContain('is not scheduler-managed: this is what the daemon would load');
    expect(byName.stdout).toMatch(/legacyshow\s+legacyshow\.alloc\s+3\s+50\s+6%/);

    const byId = json(await cli(['seed', '--database-url', db.url, '--show', cuebot.show, '--json']));
    expect(byId).toMatchObject({ mode: 'show', shows: [{ id: cuebot.show, managed: false }] });
    expect(byId.vertices.find((v: any) => v.kind === 'job')).toMatchObject({ cores: 3, max_cores: -1 });
  });

  it('unknown show: exit 2 naming it', async () => {
    const r = await cli(['seed', '--database-url', db.url, '--show', 'no-such-show']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(oneLine(r.stderr)).toBe('cueacct seed: unknown show "no-such-show": no show has that name or id');
  });

  it('--show and --daemon together: exit 2', async () => {
    const r = await cli(['seed', '--show', 'x', '--daemon', 'http://127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toContain('cannot also be provided');
  });

  it('database unreachable: exit 3, one line, no password', async () => {
    const port = await closedPort();
    const r = await cli(['seed', '--database-url', `postgres://cue:s3cretpw@127.0.0.1:${port}/farm`]);
    expect(r.code).toBe(3);
    const line = oneLine(r.stderr);
    expect(line).toBe(
      `cueacct seed: cannot reach the database at postgres://cue:***@127.0.0.1:${port}/farm (from --database-url): ECONNREFUSED`,
    );
    expect(r.stderr).not.toContain('s3cretpw');
  });

  it('--daemon: asks the running daemon to reseed and prints its status; exit 3 when it is down', async () => {
    const daemon = await startDaemon({ databaseUrl: db.url, args: QUIET_DAEMON });
    await waitReady(daemon);
    try {
      const text = await cli(['seed', '--daemon', daemon.url]);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(new RegExp(`^The daemon at ${daemon.url} reseeded its caps in `));
      expect(text.stdout).toContain('managed shows: seedshow');
      expect(text.stdout).toContain('vertices: 1 subscription, 1 folder, 1 job');

      const r = await cli(['seed', '--daemon', daemon.url, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const result = json(r);
      expect(result).toMatchObject({ mode: 'daemon', daemon: daemon.url, duration_ms: expect.any(Number) });
      expect(result.status).toMatchObject({ ready: true, managed_shows: [{ id: managed.show }] });
      expect(result.status.last_reseed.ok).toBe(true);
    } finally {
      await daemon.stop();
    }
    const down = await cli(['seed', '--daemon', daemon.url]);
    expect(down.code).toBe(3);
    expect(oneLine(down.stderr)).toMatch(
      /^cueacct seed: cannot reach daemon at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED$/,
    );
  });

  it('--daemon with a token: from CUEACCT_TOKEN, never printed; a missing one is exit 2', async () => {
    const token = 'seed-test-token-5b1e';
    const daemon = await startDaemon({ databaseUrl: db.url, args: [...QUIET_DAEMON, '--token', token] });
    await waitReady(daemon, { token });
    try {
      const missing = await cli(['seed', '--daemon', daemon.url]);
      expect(missing.code).toBe(2);
      expect(oneLine(missing.stderr)).toContain(
        'requires a token (HTTP 401): pass --token or set CUEACCT_TOKEN',
      );

      const wrong = await cli(['seed', '--daemon', daemon.url, '--token', 'not-the-token']);
      expect(wrong.code).toBe(2);
      expect(oneLine(wrong.stderr)).toContain('rejected the token');
      expect(wrong.stderr).not.toContain('not-the-token');

      const ok = await cli(['seed', '--daemon', daemon.url, '--json'], { CUEACCT_TOKEN: token });
      expect(ok.code, ok.stderr).toBe(0);
      expect(json(ok).status.ready).toBe(true);
      expect(ok.stdout + ok.stderr).not.toContain(token);
    } finally {
      await daemon.stop();
    }
  });
});
