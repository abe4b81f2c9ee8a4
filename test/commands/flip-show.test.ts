/**
 * `cueacct flip-show` as a real process against a harness database and a live daemon.
 * Run `npm run build` first: the CLI and the daemon run from build/.
 */
import { spawn, spawnSync } from 'node:child_process';
import os from 'node:os';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { cleanEnv } from '../cli/built-cli.js';

import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { CLI, api, startDaemon, waitReady, type Daemon } from '../support/daemon.js';
import { bookingFor } from '../support/service.js';
import { QUIET_DAEMON, cli, closedPort, createNamedFarm, json, oneLine, type NamedFarm } from './support.js';

let db: TestDatabase;
let daemon: Daemon;
/** Cuebot-owned, 8 cores running under a burst of 10. */
let farm: NamedFarm;

async function managed(show: string): Promise<boolean> {
  const [row] = await db.sql<{ managed: boolean }[]>`
    SELECT b_scheduler_managed AS managed FROM show WHERE pk_show = ${show}`;
  return row!.managed;
}

async function accounting(show: string) {
  const [row] = await db.sql<{ sub: number; folder: number; job: string; layer: string; point: number }[]>`
    SELECT (SELECT int_cores FROM subscription WHERE pk_show = ${show}) AS sub,
           (SELECT int_cores FROM folder_resource r JOIN folder f USING (pk_folder) WHERE f.pk_show = ${show}) AS folder,
           (SELECT int_cores::text FROM job_resource r JOIN job j USING (pk_job) WHERE j.pk_show = ${show}) AS job,
           (SELECT sum(r.int_cores)::text FROM layer_resource r JOIN job j USING (pk_job) WHERE j.pk_show = ${show}) AS layer,
           (SELECT sum(int_cores)::int FROM point WHERE pk_show = ${show}) AS point`;
  return row!;
}

const flip = (...args: string[]) => cli(['flip-show', '--database-url', db.url, ...args]);

/** util-linux `script` runs a command on a pseudo-terminal (for the confirmation prompt). */
const hasScript = spawnSync('script', ['--version']).status === 0;

/** Run the CLI on a pseudo-terminal, typing `input`; output is stdout and stderr together. */
function onTerminal(args: string[], input: string): Promise<{ code: number; output: string }> {
  const command = [process.execPath, CLI, ...args].map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
  return new Promise((resolve) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: cleanEnv(), cwd: os.tmpdir() });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(input);
  });
}

beforeAll(async () => {
  db = await createTestDatabase();
  farm = await createNamedFarm(db.sql, {
    show: 'flipshow',
    managed: false,
    burst: 10,
    procs: [{ centicores: 500 }, { centicores: 300 }],
  });
  daemon = await startDaemon({ databaseUrl: db.url, args: QUIET_DAEMON });
  await waitReady(daemon);
});
afterAll(async () => {
  await daemon?.stop();
  await db?.drop();
});

describe('cueacct flip-show', () => {
  it('--dry-run shows usage versus caps and what would change, and changes nothing', async () => {
    const r = await flip('flipshow', '--to', 'scheduler', '--dry-run');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain(`Show flipshow (${farm.show}) is owned by cuebot.`);
    expect(r.stdout).toContain('what the daemon will load and enforce from the first booking');
    expect(r.stdout).toMatch(/^flipshow\s+flipshow\.alloc\s+8\s+10\s+80%$/m);
    expect(r.stdout).toMatch(/^flipshow\s+flipshow-job\s+8\s+unlimited\s+0\s+unlimited\s+-$/m);
    expect(r.stdout).toContain('show.b_scheduler_managed: false -> true, with acct_managed_change');
    expect(r.stdout).toMatch(/Dry run: nothing changed\.\n$/);
    expect(await managed(farm.show)).toBe(false);
  });

  it('refuses without a terminal to confirm on unless --yes (exit 2), and names an unknown show (exit 2)', async () => {
    const r = await flip('flipshow', '--to', 'scheduler');
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(
      'cueacct flip-show: no terminal to confirm the flip on: pass --yes (or --dry-run to only look)',
    );
    expect(await managed(farm.show)).toBe(false);

    const unknown = await flip('nosuchshow', '--to', 'cuebot', '--yes');
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(oneLine(unknown.stderr)).toBe(
      'cueacct flip-show: unknown show "nosuchshow": no show has that name or id',
    );
  });

  it('database unreachable: exit 3', async () => {
    const port = await closedPort();
    const r = await cli([
      'flip-show',
      'flipshow',
      '--to',
      'scheduler',
      '--yes',
      '--database-url',
      `postgres://postgres@127.0.0.1:${port}/x`,
    ]);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toMatch(/^cueacct flip-show: cannot reach the database at .*: ECONNREFUSED$/);
  });

  it('--wait with the daemon down: exit 3 before anything changes', async () => {
    const port = await closedPort();
    const r = await flip(
      'flipshow',
      '--to',
      'scheduler',
      '--yes',
      '--wait',
      '--daemon',
      `http://127.0.0.1:${port}`,
    );
    expect(r.code).toBe(3);
    expect(r.stderr).toBe(
      `cueacct flip-show: cannot reach daemon at http://127.0.0.1:${port}: ECONNREFUSED\n`,
    );
    expect(await managed(farm.show)).toBe(false);
  });

  it('to scheduler with --wait: published at once, and the first booking is enforced against the real usage', async () => {
    expect((await api(daemon, 'POST', '/v1/book', bookingFor(farm, 1))).body).toEqual({
      result: 'not_managed',
    });

    const r = await flip('flipshow', '--to', 'scheduler', '--yes', '--wait', '--daemon', daemon.url);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Flipped show flipshow to scheduler in [\d.]+ (µs|ms|s)\.$/m);
    expect(r.stdout).toMatch(
      new RegExp(`^The daemon at ${daemon.url} published show flipshow after [\\d.]+ (µs|ms|s)\\.$`, 'm'),
    );
    expect(await managed(farm.show)).toBe(true);

    // 8 cores already run (booked by Cuebot) under a burst of 10.
    expect(await api(daemon, 'POST', '/v1/book', bookingFor(farm, 3))).toEqual({
      status: 409,
      body: { result: 'limit_exceeded', table: 'subscription', current: 8, limit: 10 },
    });
    const fits = await api(daemon, 'POST', '/v1/book', bookingFor(farm, 2));
    expect(fits.body.result).toBe('applied');
    await api(daemon, 'POST', '/v1/rollback', { booking: fits.body.booking });

    const again = await flip('flipshow', '--to', 'scheduler', '--yes');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Show flipshow is already owned by scheduler: nothing to change.');
  });

  it('to cuebot rewrites the show’s PG tables from SUM(proc) with the flag, and the daemon stops booking it', async () => {
    // Display copies gone stale while the scheduler owned the show.
    await db.sql`UPDATE subscription SET int_cores = 0 WHERE pk_show = ${farm.show}`;
    await db.sql`UPDATE folder_resource SET int_cores = 12345 WHERE pk_folder = ${farm.folder}`;
    await db.sql`UPDATE job_resource SET int_cores = 0 WHERE pk_job = ${farm.job}`;
    await db.sql`UPDATE layer_resource SET int_cores = 0 WHERE pk_job = ${farm.job}`;
    await db.sql`UPDATE point SET int_cores = 0 WHERE pk_show = ${farm.show}`;

    const r = await flip(farm.show, '--to', 'cuebot', '--yes', '--wait', '--daemon', daemon.url, '--json');
    expect(r.code, r.stderr).toBe(0);
    const result = json(r);
    expect(result).toMatchObject({
      show: { id: farm.show, name: 'flipshow' },
      from: 'scheduler',
      to: 'cuebot',
      dry_run: false,
      changed: true,
      usage: { mode: 'show', counts: { subscription: 1, folder: 1, job: 1 } },
      pending_rewrite: { subscription: 1, folder_resource: 1, job_resource: 1, layer_resource: 2, point: 1 },
      rewritten: { subscription: 1, folder_resource: 1, job_resource: 1, layer_resource: 2, point: 1 },
      flip_ms: expect.any(Number),
      wait: { daemon: daemon.url, ms: expect.any(Number) },
    });
    expect(await managed(farm.show)).toBe(false);
    expect(await accounting(farm.show)).toEqual({
      sub: 800,
      folder: 800,
      job: '800',
      layer: '800',
      point: 800,
    });
    expect((await api(daemon, 'POST', '/v1/book', bookingFor(farm, 1))).body).toEqual({
      result: 'not_managed',
    });
  });

  it('to cuebot is one transaction: when the rewrite fails, the flag stays and nothing is rewritten', async () => {
    await flip('flipshow', '--to', 'scheduler', '--yes', '--wait', '--daemon', daemon.url);
    await db.sql`UPDATE subscription SET int_cores = 0 WHERE pk_show = ${farm.show}`;
    await db.sql`UPDATE point SET int_cores = 0 WHERE pk_show = ${farm.show}`;
    // Failure injection for this test only: the rewrite of `point` (the last table) raises.
    await db.sql.unsafe(`
      CREATE FUNCTION test_fail_point() RETURNS trigger AS $$
      BEGIN RAISE EXCEPTION 'injected failure'; END; $$ LANGUAGE plpgsql;
      CREATE TRIGGER test_fail_point BEFORE UPDATE ON point FOR EACH ROW EXECUTE FUNCTION test_fail_point();`);
    try {
      const r = await flip('flipshow', '--to', 'cuebot', '--yes');
      expect(r.code).toBe(1);
      expect(oneLine(r.stderr)).toBe(
        'cueacct flip-show: the flip failed and was rolled back, nothing changed: injected failure',
      );
      expect(await managed(farm.show)).toBe(true);
      expect((await accounting(farm.show)).sub).toBe(0);
    } finally {
      await db.sql.unsafe('DROP TRIGGER test_fail_point ON point; DROP FUNCTION test_fail_point();');
    }
    const r = await flip('flipshow', '--to', 'cuebot', '--yes');
    expect(r.code, r.stderr).toBe(0);
    expect(await accounting(farm.show)).toMatchObject({ sub: 800, point: 800 });
  });

  it.skipIf(!hasScript)('asks on a terminal: "n" cancels (exit 1), "y" flips', async () => {
    const no = await onTerminal(
      ['flip-show', 'flipshow', '--to', 'scheduler', '--database-url', db.url],
      'n\n',
    );
    expect(no.code).toBe(1);
    expect(no.output).toContain('Flip show flipshow to scheduler? [y/N]');
    expect(no.output).toContain('cueacct flip-show: flip cancelled: nothing changed');
    expect(await managed(farm.show)).toBe(false);

    const yes = await onTerminal(
      ['flip-show', 'flipshow', '--to', 'scheduler', '--database-url', db.url],
      'y\n',
    );
    expect(yes.code, yes.output).toBe(0);
    expect(yes.output).toContain('Flipped show flipshow to scheduler');
    expect(await managed(farm.show)).toBe(true);
    expect((await flip('flipshow', '--to', 'cuebot', '--yes')).code).toBe(0);
  });

  it('--wait: exit 1 when the daemon does not publish the flip in time', async () => {
    const other = await createTestDatabase();
    const elsewhere = await startDaemon({ databaseUrl: other.url, args: QUIET_DAEMON });
    try {
      // A daemon on another database never sees this flip.
      const r = await flip(
        'flipshow',
        '--to',
        'scheduler',
        '--yes',
        '--wait',
        '--timeout',
        '1',
        '--daemon',
        elsewhere.url,
      );
      expect(r.code).toBe(1);
      expect(oneLine(r.stderr)).toBe(
        `cueacct flip-show: the daemon at ${elsewhere.url} did not publish show flipshow within 1.00 s`,
      );
      expect(await managed(farm.show)).toBe(true);
    } finally {
      await elsewhere.stop();
      await other.drop();
      await flip('flipshow', '--to', 'cuebot', '--yes');
    }
  });
});
