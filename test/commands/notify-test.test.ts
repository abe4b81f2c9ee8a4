/**
 * `cueacct notify-test` as a real process against a harness database and a live daemon, with
 * its listener up and down. Run `npm run build` first: the CLI and the daemon run from build/.
 */
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTestDatabase, waitFor, type TestDatabase } from '../support/db.js';
import { api, startDaemon, type Daemon } from '../support/daemon.js';
import { QUIET_DAEMON, cli, closedPort, createNamedFarm, json, oneLine, type NamedFarm } from './support.js';

let db: TestDatabase;
let farm: NamedFarm;

const probe = (...args: string[]) => cli(['notify-test', '--database-url', db.url, ...args]);

beforeAll(async () => {
  db = await createTestDatabase();
  farm = await createNamedFarm(db.sql, {
    show: 'notifyshow',
    managed: true,
    burst: 100,
    jobCores: 50,
    procs: [{ centicores: 600 }],
  });
});
afterAll(async () => {
  await db?.drop();
});

describe('cueacct notify-test: the database round trip', () => {
  it('one round trip with its latency (--skip-daemon)', async () => {
    const r = await probe('--skip-daemon');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(
      /^Database: postgres:\/\/postgres@127\.0\.0\.1:\d+\/\w+ \(from --database-url\)$/m,
    );
    expect(r.stdout).toMatch(/^Round trip: [\d.]+ (µs|ms|s)\.$/m);
  });

  it('--count N: a burst with throughput and p50/p99 (--json shape)', async () => {
    const r = await probe('--skip-daemon', '--count', '300', '--json');
    expect(r.code, r.stderr).toBe(0);
    const result = json(r);
    expect(result).toEqual({
      ok: true,
      exit_code: 0,
      database: expect.stringContaining('(from --database-url)'),
      kind: 'probe',
      messages: [],
      sent: 300,
      received: 300,
      missing: 0,
      latency_ms: {
        min: expect.any(Number),
        p50: expect.any(Number),
        p99: expect.any(Number),
        max: expect.any(Number),
        mean: expect.any(Number),
      },
      duration_ms: expect.any(Number),
      throughput_per_s: expect.any(Number),
      daemon: null,
      problems: [],
    });
    const l = result.latency_ms;
    expect(l.min).toBeLessThanOrEqual(l.p50);
    expect(l.p50).toBeLessThanOrEqual(l.p99);
    expect(l.p99).toBeLessThanOrEqual(l.max);
    expect(result.throughput_per_s).toBeGreaterThan(0);

    const text = await probe('--skip-daemon', '--count', '50');
    expect(text.stdout).toMatch(
      /^Round trip: 50 of 50 notifications back in [\d.]+ (µs|ms|s) \(\d+\/s\); latency p50 [\d.]+ (µs|ms|s), p99 [\d.]+ (µs|ms|s), max /m,
    );
  });

  it('validates --release / --limit-change with the wire parser: exit 2 naming the field', async () => {
    const ids = `"show":"${farm.show}","alloc":"${farm.alloc}","folder":"${farm.folder}","job":"${farm.job}"`;
    for (const [flag, payload, message] of [
      ['--release', `{${ids},"cores":2,"gpus":0}`, 'cores: expected an integer <= 0, got 2'],
      ['--release', `{"show":"${farm.show}","cores":-1,"gpus":0}`, 'alloc: missing'],
      ['--release', `{${ids},"cores":-1.5,"gpus":0}`, 'cores: expected an integer <= 0, got -1.5'],
      ['--limit-change', `{"vertex":"layer","id":"x","max_cores":1}`, 'vertex: unknown value "layer"'],
      ['--limit-change', `{"vertex":"job","id":"${farm.job}"}`, 'max_cores, max_gpus: missing'],
    ] as const) {
      const r = await probe('--skip-daemon', flag, payload);
      expect(r.code, payload).toBe(2);
      expect(r.stdout).toBe('');
      const line = oneLine(r.stderr);
      expect(line).toContain(`cueacct notify-test: ${flag} is not a valid acct_`);
      expect(line).toContain(message);
    }
    const notJson = await probe('--skip-daemon', '--release', '{"show":');
    expect(notJson.code).toBe(2);
    expect(oneLine(notJson.stderr)).toMatch(/^cueacct notify-test: parsing --release: not valid JSON/);

    const burst = await probe('--skip-daemon', '--count', '2', '--release', `{${ids},"cores":-1,"gpus":0}`);
    expect(burst.code).toBe(2);
    expect(oneLine(burst.stderr)).toContain('--count cannot be combined with --release or --limit-change');
  });

  it('unreachable database: exit 3', async () => {
    const port = await closedPort();
    const r = await cli([
      'notify-test',
      '--skip-daemon',
      '--database-url',
      `postgres://postgres@127.0.0.1:${port}/x`,
    ]);
    expect(r.code).toBe(3);
    expect(oneLine(r.stderr)).toMatch(/^cueacct notify-test: cannot reach the database at .*: ECONNREFUSED$/);
  });

  it('daemon unreachable: the round trip is printed, then exit 3 with one line', async () => {
    const port = await closedPort();
    const r = await probe('--daemon', `http://127.0.0.1:${port}`);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^Round trip: [\d.]+ (µs|ms|s)\.$/m);
    expect(r.stdout).toContain(`Daemon: http://127.0.0.1:${port} not reachable.`);
    expect(oneLine(r.stderr)).toBe(
      `cueacct notify-test: cannot reach daemon at http://127.0.0.1:${port}: ECONNREFUSED`,
    );
  });
});

describe('cueacct notify-test with a live daemon', () => {
  let daemon: Daemon;
  const status = async () => (await api(daemon, 'GET', '/v1/status')).body;

  beforeAll(async () => {
    daemon = await startDaemon({ databaseUrl: db.url, args: QUIET_DAEMON });
    await waitFor(async () => (await status()).listener.connected === true, {
      message: 'listener connected',
    });
  });
  afterAll(async () => {
    await daemon?.stop();
  });

  it("reports the daemon's listener connected and receiving the probe", async () => {
    const before = (await status()).listener.applied.probe;
    const r = await probe('--daemon', daemon.url);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^Daemon: ${daemon.url}, listener connected; it received the probe within [\\d.]+ (µs|ms|s)\\.$`,
        'm',
      ),
    );
    expect((await status()).listener.applied.probe).toBe(before + 1);
  });

  it('--count N: the daemon received all of them', async () => {
    const r = await probe('--daemon', daemon.url, '--count', '100', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(json(r).daemon).toEqual({
      url: daemon.url,
      reachable: true,
      listener_connected: true,
      received: 100,
      expected: 100,
      dropped: 0,
      wait_ms: expect.any(Number),
      error: null,
    });
  });

  it('--release sends a real release (warning on stderr): the daemon applies it to its live counters', async () => {
    const job = async () =>
      (await api(daemon, 'GET', '/v1/state?vertex=job&show=notifyshow')).body.vertices[0];
    expect((await job()).cores).toBe(6);
    const payload = JSON.stringify({
      show: farm.show,
      alloc: farm.alloc,
      folder: farm.folder,
      job: farm.job,
      cores: -2,
      gpus: 0,
    });
    const r = await probe('--daemon', daemon.url, '--release', payload, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(oneLine(r.stderr)).toBe(
      'warning: sending a real acct_release payload: a running daemon applies it to its live counters',
    );
    const result = json(r);
    expect(result).toMatchObject({
      ok: true,
      kind: 'real',
      messages: [{ channel: 'acct_release', payload }],
      received: 1,
      daemon: { received: 1, expected: 1, listener_connected: true },
    });
    expect((await job()).cores).toBe(4);

    const limit = await probe(
      '--daemon',
      daemon.url,
      '--limit-change',
      JSON.stringify({ vertex: 'job', id: farm.job, max_cores: 7 }),
    );
    expect(limit.code, limit.stderr).toBe(0);
    expect(limit.stderr).toContain('a running daemon applies it to its live caps');
    expect(limit.stdout).toContain('Sent acct_limit_change {"vertex":"job"');
    expect((await job()).max_cores).toBe(7);
    await api(daemon, 'POST', '/v1/admin/recompute');
    await api(daemon, 'POST', '/v1/admin/reseed');
  });
});

describe('cueacct notify-test with the daemon listener down', () => {
  const role = `cueacct_nt_${randomBytes(4).toString('hex')}`;
  let daemon: Daemon;

  beforeAll(async () => {
    // The daemon runs as its own role, so its listener can be kept from reconnecting
    // (NOLOGIN) while its other sessions stay up.
    await db.sql.unsafe(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
    await db.sql.unsafe(`GRANT ALL ON ALL TABLES IN SCHEMA public TO ${role}`);
    const url = new URL(db.url);
    url.username = role;
    url.password = 'pw';
    daemon = await startDaemon({ databaseUrl: url.toString(), args: QUIET_DAEMON });
    const status = async () => (await api(daemon, 'GET', '/v1/status')).body;
    await waitFor(async () => (await status()).listener.connected === true, {
      message: 'listener connected',
    });
    await db.sql.unsafe(`ALTER ROLE ${role} NOLOGIN`);
    await db.sql`
      SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = current_database() AND usename = ${role} AND application_name = 'cueacct-listener'`;
    await waitFor(async () => (await status()).listener.connected === false, {
      message: 'listener disconnected',
    });
  });
  afterAll(async () => {
    await daemon?.stop('SIGKILL');
    await db.sql.unsafe(`DROP OWNED BY ${role}`);
    await db.sql.unsafe(`DROP ROLE ${role}`);
  });

  it('exit 1: the listener is not connected', async () => {
    const r = await probe('--daemon', daemon.url);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^Round trip: [\d.]+ (µs|ms|s)\.$/m);
    expect(r.stdout).toContain(`Daemon: ${daemon.url}, listener NOT connected; it received 0 of 1.`);
    expect(r.stdout).toContain("problem: the daemon's listener is not connected");
    const result = json(await probe('--daemon', daemon.url, '--json'));
    expect(result).toMatchObject({
      ok: false,
      exit_code: 1,
      received: 1,
      daemon: { reachable: true, listener_connected: false, received: 0, expected: 1 },
    });
  });
});
