/**
 * The shipped operations assets against the real tools: `promtool check rules` and `promtool
 * test rules` (one unit test per alert), and a real Prometheus (Debian's `prometheus`
 * package) scraping a live daemon on loopback, queried through its HTTP API. The Prometheus
 * is this test's own child process (own config and data dir in a temp dir, a free loopback
 * port), killed by its PID. Skips only when the binaries are absent (.ci/run installs them).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/db.js';
import { ROOT, api, startDaemon, waitReady, type Daemon } from '../support/daemon.js';
import { bookingFor, createFarmAtJobCap } from '../support/service.js';

const run = promisify(execFile);
const RULES = path.join(ROOT, 'deploy', 'prometheus', 'cueacct-rules.yml');
const RULE_TESTS = path.join(ROOT, 'deploy', 'prometheus', 'cueacct-rules.test.yml');
const DASHBOARD = path.join(ROOT, 'deploy', 'grafana', 'cueacct.json');
/** Series other branches add (lock lease work, booking path); the assets use these names. */
const FROM_OTHER_BRANCHES = new Set(['cueacct_lock_handovers_total', 'cueacct_late_settlements_total']);

function has(binary: string): boolean {
  try {
    execFileSync(binary, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const promtool = has('promtool');
const prometheus = has('prometheus');
if (!promtool || !prometheus) {
  console.warn(
    'SKIPPED the Prometheus tests: promtool/prometheus not installed (apt-get install -y prometheus)',
  );
}

/** Every `cueacct_…` series name an expression mentions (histogram suffixes stripped). */
function seriesNames(text: string): Set<string> {
  const names = new Set<string>();
  for (const match of text.matchAll(/\bcueacct_[a-z_]+/g))
    names.add(match[0].replace(/_(bucket|sum|count)$/, ''));
  return names;
}

describe.skipIf(!promtool)('alert rules (promtool)', () => {
  it('pass promtool check rules', async () => {
    const { stdout } = await run('promtool', ['check', 'rules', RULES]);
    expect(stdout).toContain('SUCCESS: 8 rules found');
  });

  it('pass promtool test rules, with a unit test for every alert', async () => {
    const { stdout } = await run('promtool', ['test', 'rules', RULE_TESTS], {
      cwd: path.dirname(RULE_TESTS),
    });
    expect(stdout).toContain('SUCCESS');
    const alerts = [...readFileSync(RULES, 'utf8').matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    const tested = new Set(
      [...readFileSync(RULE_TESTS, 'utf8').matchAll(/alertname: (\w+)/g)].map((m) => m[1]),
    );
    expect(alerts).toHaveLength(8);
    for (const alert of alerts) expect(tested, `${alert} has a unit test`).toContain(alert);
  });
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe.skipIf(!prometheus)('a real Prometheus scraping a live daemon', () => {
  let db: TestDatabase;
  let daemon: Daemon;
  let child: ChildProcess | undefined;
  let dir: string;
  let promUrl: string;
  let output = '';

  beforeAll(async () => {
    db = await createTestDatabase();
    const farm = await createFarmAtJobCap(db.sql, 'prom-show');
    daemon = await startDaemon({ databaseUrl: db.url });
    await waitReady(daemon);
    // One refusal by the job cap (4/4), so the per-show refusal series exists.
    const refused = await api(daemon, 'POST', '/v1/book', bookingFor(farm, 1));
    expect(refused.body).toMatchObject({ result: 'limit_exceeded', table: 'job' });

    dir = mkdtempSync(path.join(os.tmpdir(), 'cueacct-prometheus-'));
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    const target = new URL(daemon.url).host;
    writeFileSync(
      path.join(dir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'rule_files:',
        `  - ${JSON.stringify(RULES)}`,
        'scrape_configs:',
        '  - job_name: cueacct',
        '    static_configs:',
        `      - targets: [${JSON.stringify(target)}]`,
        '',
      ].join('\n'),
    );
    child = spawn(
      'prometheus',
      [
        `--config.file=${path.join(dir, 'prometheus.yml')}`,
        `--storage.tsdb.path=${path.join(dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor(
      async () => {
        if (child!.exitCode !== null) throw new Error(`prometheus exited ${child!.exitCode}:\n${output}`);
        return fetch(`${promUrl}/-/ready`).then(
          (r) => r.ok,
          () => false,
        );
      },
      { timeoutMs: 60_000, message: 'prometheus ready' },
    );
  }, 120_000);

  afterAll(async () => {
    if (child?.pid !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    await daemon?.stop();
    await db?.drop();
  });

  async function query(expr: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const response = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as { status: string; data: { result: never[] } };
    expect(body.status).toBe('success');
    return body.data.result;
  }

  it('scrapes the daemon: readiness, and the per-subscription and per-show series by name', async () => {
    await waitFor(async () => (await query('cueacct_ready')).length > 0, {
      timeoutMs: 60_000,
      message: 'cueacct_ready scraped',
    });
    const [ready] = await query('cueacct_ready');
    expect(ready!.metric).toMatchObject({ job: 'cueacct', instance: new URL(daemon.url).host });
    expect(ready!.value[1]).toBe('1');
    const [booked] = await query('cueacct_subscription_booked_cores{show="prom-show"}');
    expect(booked!.value[1]).toBe('4');
    const [refusals] = await query('cueacct_show_refusals_total{show="prom-show",table="job"}');
    expect(refusals!.value[1]).toBe('1');
  });

  it('loads the shipped rules, and every series the rules and the dashboard use is exported (or comes from a named branch)', async () => {
    const response = await fetch(`${promUrl}/api/v1/rules`);
    const body = (await response.json()) as { data: { groups: { name: string; rules: unknown[] }[] } };
    expect(body.data.groups.map((g) => [g.name, g.rules.length])).toEqual([['cueacct', 8]]);

    const exported = seriesNames((await api(daemon, 'GET', '/metrics')).body as string);
    const used = new Set([
      ...seriesNames(readFileSync(RULES, 'utf8')),
      ...seriesNames(readFileSync(DASHBOARD, 'utf8')),
    ]);
    const missing = [...used].filter((name) => !exported.has(name) && !FROM_OTHER_BRANCHES.has(name));
    expect(missing).toEqual([]);
  });
});
