/** `cueacct inspect` as a real process with a real daemon behind it. */
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/db.js';
import { CLI, api, startDaemon, waitReady, type Daemon } from '../support/daemon.js';
import { bookingFor, createFarmAtJobCap } from '../support/service.js';

const run = promisify(execFile);
let db: TestDatabase;
let daemon: Daemon;
let jobId: string;
let refuse: () => Promise<void>;

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
  const farm = await createFarmAtJobCap(db.sql, 'inspect-show');
  await db.sql`UPDATE job SET str_name = 'hero-comp' WHERE pk_job = ${farm.job}`;
  jobId = farm.job;
  // Sample refusals every 0.2 s so the detail history fills within the test.
  daemon = await startDaemon({ databaseUrl: db.url, args: ['--history-interval', '0.2'] });
  await waitReady(daemon);
  // The job sits at its cap (4/4): three bookings are refused by its job cap. Tests that need
  // a refusal within the last minute call this again (a slow machine may take longer than that).
  refuse = async () => {
    for (let i = 0; i < 3; i++) {
      const booked = await api(daemon, 'POST', '/v1/book', bookingFor(farm, 1));
      expect(booked.body).toMatchObject({ result: 'limit_exceeded', table: 'job' });
    }
  };
  await refuse();
  // Two history samples have seen the refusals.
  await waitFor(
    async () => (await api(daemon, 'GET', `/v1/vertex?kind=job&key=${farm.job}`)).body.history?.length >= 2,
    { message: 'history sampled' },
  );
});
afterAll(async () => {
  await daemon?.stop();
  await db?.drop();
});

describe('cueacct inspect', () => {
  it('--once prints one plain frame: header, names, booked/cap, the job exactly at its cap FULL', async () => {
    const { code, stdout } = await inspect(['--daemon', daemon.url, '--once', '--vertex', 'job']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/ready yes · lock yes \(serving\) · listener yes/);
    expect(stdout).toMatch(/hero-comp\s+inspect-show\s+4\/4/);
    expect(stdout).toContain('FULL');
    expect(stdout).not.toContain('OVER');
    expect(stdout).toContain('REF/S');
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

  it('--once --key prints why the job gets no cores; --json carries the refusals and the detail', async () => {
    await refuse();
    const once = await inspect(['--daemon', daemon.url, '--once', '--vertex', 'job', '--key', jobId]);
    expect(once.code).toBe(0);
    expect(once.stdout).toContain('job hero-comp (show inspect-show) · refused by job (hero-comp)');
    expect(once.stdout).toMatch(/▶ job\s+hero-comp\s+4\/4\s+100\.0%\s+[0-9.]+\/s job \d+ · gpus 0/);
    expect(once.stdout).toMatch(/refusals\/s .*max/);
    await refuse();
    const json = await inspect(['--daemon', daemon.url, '--json', '--vertex', 'job', '--key', jobId]);
    const parsed = JSON.parse(json.stdout);
    const counted = parsed.state.vertices[0].refusals;
    expect(counted.total).toBeGreaterThanOrEqual(9);
    expect(counted.by_table).toEqual({ job: counted.total, job_gpus: 0 });
    expect(parsed.detail.binding).toEqual({ key: jobId, table: 'job', reason: 'refusing' });
    expect(parsed.detail.path.map((v: { kind: string }) => v.kind)).toEqual([
      'subscription',
      'folder',
      'job',
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

/** The live TUI in a real terminal: tmux gives it a pty of exactly 80×24. */
const tmux = (() => {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!tmux) console.warn('SKIPPED the tmux test of inspect: tmux is not installed (apt-get install -y tmux)');

describe.skipIf(!tmux)('cueacct inspect in a real terminal (tmux, 80×24)', () => {
  const session = `cueacct-inspect-${process.pid}`;
  const capture = (): string =>
    execFileSync('tmux', ['capture-pane', '-p', '-t', session], { encoding: 'utf8' });
  const keys = (...k: string[]): void => void execFileSync('tmux', ['send-keys', '-t', session, ...k]);
  const shows = (needle: string | RegExp) =>
    waitFor(() => (typeof needle === 'string' ? capture().includes(needle) : needle.test(capture())), {
      timeoutMs: 20_000,
      message: `tmux pane shows ${String(needle)}`,
    }).catch((error: Error) => {
      throw new Error(`${error.message}\n${capture()}`);
    });

  afterAll(() => {
    try {
      execFileSync('tmux', ['kill-session', '-t', session], { stdio: 'ignore' });
    } catch {
      // already gone (q quit it)
    }
  });

  it('shows the table, sorts by blocked, opens the detail pane with Enter and closes it with Esc, all within 80×24, even with CI set', async () => {
    const command = [
      process.execPath,
      CLI,
      'inspect',
      '--daemon',
      daemon.url,
      '--vertex',
      'job',
      '--interval',
      '0.5',
    ]
      .map((a) => `'${a}'`)
      .join(' ');
    await refuse();
    execFileSync('tmux', [
      'new-session',
      '-d',
      '-s',
      session,
      '-x',
      '80',
      '-y',
      '24',
      // CI=true: Ink would draw only the last frame at exit; the operator at a terminal sees it live.
      `CI=true NO_COLOR=1 ${command}`,
    ]);
    await shows('hero-comp');
    const table = capture();
    // 80 columns: the show column is 10 wide.
    expect(table).toMatch(/hero-comp\s+inspect-s…\s+4\/4/);
    expect(table).toContain('FULL');
    expect(table).toContain('REF/S');
    keys('b');
    await shows('by blocked');
    keys('Enter');
    await shows('refused by job (hero-comp)');
    const pane = capture();
    expect(pane).toMatch(/▶ job\s+hero-comp/);
    expect(pane).toContain('utilization');
    expect(pane).toContain('Enter/Esc back');
    for (const line of pane.split('\n')) expect(Array.from(line.trimEnd()).length).toBeLessThanOrEqual(80);
    expect(pane.split('\n').length).toBeLessThanOrEqual(25);
    keys('Escape');
    await shows('BOOKED/CAP');
    keys('q');
    await waitFor(
      () => {
        try {
          execFileSync('tmux', ['has-session', '-t', session], { stdio: 'ignore' });
          return false;
        } catch {
          return true;
        }
      },
      { timeoutMs: 10_000, message: 'inspect quit on q' },
    );
  });
});
