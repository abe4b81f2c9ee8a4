import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  OWNER_FILE,
  PASSWORD_FILE,
  clearStalePid,
  defaultDataDir,
  startCluster,
  systemBinDirs,
  type ClusterLogger,
} from '../../src/embedded/cluster.js';
import { DEMO_SHOWS } from '../../src/embedded/demo-farm.js';
import { DEMO_DATABASE, startEmbedded, type EmbeddedDatabase } from '../../src/embedded/start.js';

/** Collects log lines; the tests check some of the warnings. */
function memoryLogger(): ClusterLogger & { lines: string[] } {
  const lines: string[] = [];
  const push = (obj: object, msg: string) => lines.push(`${msg} ${JSON.stringify(obj)}`);
  return { lines, info: push, warn: push };
}

/** A temp dir the unprivileged server user can enter when the tests run as root. */
function tempParent(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cueacct-embedded-test-'));
  chmodSync(dir, 0o755);
  return dir;
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function query<T extends object>(url: string, text: string): Promise<T[]> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    return (await sql.unsafe(text)) as unknown as T[];
  } finally {
    await sql.end({ timeout: 5 });
  }
}

describe('startEmbedded: a persistent cluster with the demo farm', () => {
  let parent: string;
  let dataDir: string;
  let first: EmbeddedDatabase | undefined;

  beforeAll(() => {
    parent = tempParent();
    dataDir = join(parent, 'state', 'cueacct', 'embedded');
  });

  afterAll(async () => {
    await first?.stop();
    rmSync(parent, { recursive: true, force: true });
  });

  it('creates the data dir, the demo database and a farm with the expected shape', async () => {
    const logger = memoryLogger();
    first = await startEmbedded({ dataDir, logger });
    expect(first.created).toBe(true);
    expect(first.dataDir).toBe(dataDir);
    expect(existsSync(join(dataDir, 'PG_VERSION'))).toBe(true);
    expect(new URL(first.url).pathname).toBe(`/${DEMO_DATABASE}`);
    // TCP logins need the generated password, kept beside the data.
    expect(new URL(first.url).password).toBe(readFileSync(join(dataDir, PASSWORD_FILE), 'utf8').trim());
    expect(statSync(join(dataDir, PASSWORD_FILE)).mode & 0o077).toBe(0);
    const noPassword = new URL(first.url);
    noPassword.password = '';
    await expect(query(noPassword.toString(), 'select 1')).rejects.toThrow(/password/i);

    // Never root: as root the server runs as an unprivileged user.
    const uid = Number(
      execFileSync('ps', ['-o', 'uid=', '-p', String(first.cluster.pid)], { encoding: 'utf8' }),
    );
    expect(uid).not.toBe(0);

    const shows = await query<{ str_name: string; b_scheduler_managed: boolean }>(
      first.url,
      'select str_name, b_scheduler_managed from show order by str_name',
    );
    expect(shows.map((s) => s.str_name)).toEqual(DEMO_SHOWS.map((s) => s.name).sort());
    expect(shows.filter((s) => s.b_scheduler_managed)).toHaveLength(2);
    expect(shows.filter((s) => !s.b_scheduler_managed).map((s) => s.str_name)).toEqual(['legacy']);

    const [counts] = await query<{
      procs: number;
      gpu_procs: number;
      unlimited_jobs: number;
      gpu_capped_jobs: number;
    }>(
      first.url,
      `select (select count(*)::int from proc) as procs,
              (select count(*)::int from proc where int_gpus_reserved > 0) as gpu_procs,
              (select count(*)::int from job_resource where int_max_cores = -1) as unlimited_jobs,
              (select count(*)::int from job_resource where int_max_gpus between 1 and 10) as gpu_capped_jobs`,
    );
    expect(counts!.procs).toBeGreaterThan(50);
    expect(counts!.gpu_procs).toBeGreaterThan(0);
    expect(counts!.unlimited_jobs).toBeGreaterThan(0);
    expect(counts!.gpu_capped_jobs).toBeGreaterThan(0);

    // Booked per subscription (SUM(proc) by show × host allocation) against burst.
    const subs = await query<{ show: string; alloc: string; booked: number; burst: number }>(
      first.url,
      `select sh.str_name as show, a.str_name as alloc, s.int_burst::int as burst,
              coalesce((select sum(p.int_cores_reserved)::int from proc p join host h on h.pk_host = p.pk_host
                         where p.pk_show = s.pk_show and h.pk_alloc = s.pk_alloc), 0) as booked
         from subscription s join show sh using (pk_show) join alloc a using (pk_alloc)`,
    );
    const managedBooked = subs.filter((s) => s.show !== 'legacy').reduce((n, s) => n + s.booked, 0);
    expect(managedBooked).toBeGreaterThan(0);
    expect(subs.find((s) => s.show === 'legacy')!.booked).toBeGreaterThan(0);
    for (const s of subs) expect(s.booked).toBeLessThanOrEqual(s.burst);
    // Some vertices start near their caps (≥ 85 %), and one subscription is closed (burst 0).
    expect(subs.some((s) => s.burst > 0 && s.booked / s.burst >= 0.85)).toBe(true);
    expect(subs.some((s) => s.burst === 0)).toBe(true);
    const folders = await query<{ booked: number; cap: number }>(
      first.url,
      `select fr.int_max_cores as cap,
              coalesce((select sum(p.int_cores_reserved)::int from proc p join job j using (pk_job)
                         where j.pk_folder = fr.pk_folder), 0) as booked
         from folder_resource fr where fr.int_max_cores > 0`,
    );
    expect(folders.some((f) => f.booked / f.cap >= 0.85 && f.booked <= f.cap)).toBe(true);
    // The accounting columns are cueacct's to fill: fixtures leave them at zero.
    const [acct] = await query<{ cores: number }>(
      first.url,
      'select coalesce(sum(int_cores), 0)::int as cores from subscription',
    );
    expect(acct!.cores).toBe(0);
    expect(logger.lines.some((l) => l.startsWith('demo farm created'))).toBe(true);
  });

  it('refuses a second start on the data dir while the first runs', async () => {
    await expect(startEmbedded({ dataDir, logger: memoryLogger() })).rejects.toThrow(/already running/);
    expect(running(first!.cluster.pid)).toBe(true);
  });

  it('stops cleanly and a restart reuses the cluster and the farm unchanged', async () => {
    const { pid, baseDir } = first!.cluster;
    const procsBefore = await query<{ n: number }>(first!.url, 'select count(*)::int as n from proc');
    await first!.stop();
    first = undefined;
    expect(running(pid)).toBe(false);
    expect(existsSync(baseDir)).toBe(false);
    expect(existsSync(join(dataDir, 'postmaster.pid'))).toBe(false);
    expect(existsSync(join(dataDir, OWNER_FILE))).toBe(false);

    const logger = memoryLogger();
    first = await startEmbedded({ dataDir, logger });
    expect(first.created).toBe(false);
    expect(logger.lines.some((l) => l.startsWith('creating the embedded PostgreSQL cluster'))).toBe(false);
    expect(await query<{ n: number }>(first.url, 'select count(*)::int as n from proc')).toEqual(procsBefore);
    // A clean shutdown leaves nothing to recover.
    const log = await query<{ n: number }>(first.url, 'select count(*)::int as n from show');
    expect(log[0]!.n).toBe(DEMO_SHOWS.length);
  });

  it('removes a stale postmaster.pid left by a crash and starts', async () => {
    await first!.stop();
    first = undefined;
    // A pid file naming a live process that is not this cluster's postmaster (pid 1) — PostgreSQL
    // itself would refuse to start on it.
    writeFileSync(
      join(dataDir, 'postmaster.pid'),
      `1\n${dataDir}\n1700000000\n5432\n/tmp\n127.0.0.1\n0 0\nready\n`,
    );
    const logger = memoryLogger();
    first = await startEmbedded({ dataDir, logger });
    expect(first.created).toBe(false);
    expect(logger.lines.some((l) => l.startsWith('removing a stale postmaster.pid'))).toBe(true);
  });

  it('stops an orphaned server whose cueacct process died, then starts', async () => {
    // Pretend the process that started the running server is gone (it was SIGKILLed).
    const { pid: orphanPid, baseDir: orphanBaseDir } = first!.cluster;
    writeFileSync(join(dataDir, OWNER_FILE), '999999999 0\n');
    const logger = memoryLogger();
    const second = await startEmbedded({ dataDir, logger });
    try {
      expect(logger.lines.some((l) => l.startsWith('stopping an orphaned embedded PostgreSQL'))).toBe(true);
      expect(running(orphanPid)).toBe(false);
      // The dead run's private temp dir (socket) goes with it.
      expect(existsSync(orphanBaseDir)).toBe(false);
      expect(second.cluster.pid).not.toBe(orphanPid);
      expect(second.created).toBe(false);
    } finally {
      await first!.stop(); // its server is already gone: only its temp dir is left to remove
      first = second;
    }
  });
});

describe('startCluster: the underlying cluster', () => {
  it('a throwaway cluster (no data dir) leaves nothing behind', async () => {
    const cluster = await startCluster();
    expect(cluster.persistent).toBe(false);
    expect(new URL(cluster.url).password).toBe('');
    const [row] = await query<{ one: number }>(cluster.url, 'select 1 as one');
    expect(row).toEqual({ one: 1 });
    await cluster.stop();
    await cluster.stop(); // idempotent
    expect(existsSync(cluster.baseDir)).toBe(false);
    expect(running(cluster.pid)).toBe(false);
  });

  const system = systemBinDirs()[0];
  it.skipIf(system === undefined)(
    'runs on the system PostgreSQL binaries (the executable’s path)',
    async () => {
      const cluster = await startCluster({ binDir: system! });
      try {
        expect(cluster.binDir).toBe(system);
        const [row] = await query<{ v: string }>(cluster.url, 'show server_version_num');
        expect(Math.floor(Number(Object.values(row!)[0]) / 10_000)).toBe(cluster.major);
      } finally {
        await cluster.stop();
      }
    },
  );

  it('names what to install when the binaries are missing', async () => {
    await expect(startCluster({ env: { CUEACCT_PG_BIN: '/nonexistent/bin' } })).rejects.toThrow(
      /no runnable PostgreSQL server in \/nonexistent\/bin .*CUEACCT_PG_BIN/,
    );
  });

  it('refuses a non-empty directory that is not a cluster', async () => {
    const parent = tempParent();
    try {
      writeFileSync(join(parent, 'notes.txt'), 'x');
      await expect(startCluster({ dataDir: parent })).rejects.toThrow(
        /not empty and holds no PostgreSQL cluster/,
      );
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it('clearStalePid leaves a directory without a pid file alone and removes a dead pid', async () => {
    const dir = tempParent();
    try {
      await clearStalePid(dir);
      // A pid that exited: spawn and reap a short-lived process.
      const child = spawn(process.execPath, ['-e', '0']);
      await new Promise((r) => child.once('exit', r));
      writeFileSync(join(dir, 'postmaster.pid'), `${child.pid}\n${dir}\n`);
      await clearStalePid(dir);
      expect(existsSync(join(dir, 'postmaster.pid'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the default data dir is under the user state dir', () => {
    expect(defaultDataDir({ XDG_STATE_HOME: '/s' }, '/home/u')).toBe('/s/cueacct/embedded');
    expect(defaultDataDir({}, '/home/u')).toBe('/home/u/.local/state/cueacct/embedded');
    expect(defaultDataDir({ XDG_STATE_HOME: 'relative' }, '/home/u')).toBe(
      '/home/u/.local/state/cueacct/embedded',
    );
  });
});
