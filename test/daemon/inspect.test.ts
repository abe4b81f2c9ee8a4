/** `cueacct inspect` as a real process with a real daemon behind it. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProc } from '../../src/db/fixtures.js';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/db.js';
import { CLI, api, startDaemon, type Daemon } from '../support/daemon.js';
import { createSmallFarm } from '../support/service.js';

const run = promisify(execFile);
let db: TestDatabase;
let daemon: Daemon;

async function inspect(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, 'inspect', ...args], {
      env: { ...process.env, NO_COLOR: '1' },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  const farm = await createSmallFarm(db.sql, {
    managed: true,
    burst: 10,
    jobCores: 4,
    showName: 'inspect-show',
  });
  await db.sql`UPDATE job SET str_name = 'hero-comp' WHERE pk_job = ${farm.job}`;
  await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 400 });
  daemon = await startDaemon({ databaseUrl: db.url });
  await waitFor(async () => (await api(daemon, 'GET', '/readyz')).status === 200, { message: 'ready' });
});
afterAll(async () => {
  await daemon?.stop();
  await db?.drop();
});

describe('cueacct inspect', () => {
  it('--once prints one plain frame: header, names, booked/cap, the job at its cap', async () => {
    const { code, stdout } = await inspect(['--daemon', daemon.url, '--once', '--vertex', 'job']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/ready yes · lock yes \(serving\) · listener yes/);
    expect(stdout).toMatch(/hero-comp\s+inspect-show\s+4\/4/);
    expect(stdout).toContain('OVER');
    expect(stdout).not.toContain(String.fromCharCode(27)); // no ANSI colour when not a TTY
  });

  it('--json prints the status and the state', async () => {
    const { code, stdout } = await inspect(['--daemon', daemon.url, '--json', '--vertex', 'subscription']);
    expect(code).toBe(0);
    const parsed = JSON.parse(stdout);
    expect(parsed.status.ready).toBe(true);
    expect(parsed.state.vertices).toEqual([
      expect.objectContaining({ kind: 'subscription', cores: 4, max_cores: 10 }),
    ]);
  });

  it('exits 3 with one line when the daemon is down', async () => {
    const { code, stderr, stdout } = await inspect(['--daemon', 'http://127.0.0.1:1', '--once']);
    expect(code).toBe(3);
    expect(stdout).toBe('');
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/cannot reach daemon at http:\/\/127\.0\.0\.1:1/);
  });
});
