/**
 * Plumbing of the stress suite: throwaway databases, the real daemon process, a private
 * PostgreSQL that can be restarted, the listener killer, scale knobs. No vitest here: the
 * same code runs under `npm run stress` (plain node over the build) and in stress.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { Sql } from 'postgres';
import { serverAnswers } from '../../src/db/connection.js';
import type { FarmSpec } from '../../src/db/fixtures.js';
import { startCluster, type EmbeddedCluster } from '../../src/embedded/cluster.js';
import { ApiClient } from '../../src/simulate/index.js';
import { startDaemon, type Daemon } from '../support/daemon.js';
import { createDatabaseOn, type TestDatabase } from '../support/db.js';
import { until } from './audit.js';

export const LOCAL_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

// ---- scale ----------------------------------------------------------------------------------

/** The farm of the drain-like phases (every phase that does not size its own). */
export type StressFarm = Pick<
  FarmSpec,
  'shows' | 'allocs' | 'foldersPerShow' | 'jobsPerFolder' | 'hostsPerAlloc' | 'procs'
>;

export interface StressScale extends StressFarm {
  /** Load per phase, ms. */
  phaseMs: number;
  /** Target bookings/s of the paced phases (0 = as fast as possible). */
  rate: number;
  /** Booking loops of the simulated scheduler. */
  workers: number;
  /** Bookings per request. */
  batchSize: number;
  /** Listener kills in phase 6. */
  listenerKills: number;
  /** Transactions of the malformed flood in phase 7 (each mixes good and bad payloads). */
  floodTransactions: number;
  /** Lease of phase 9, seconds. */
  leaseSeconds: number;
}

/** Small: every phase in a few seconds (CI). */
export const CI_SCALE: StressScale = {
  phaseMs: 1_500,
  rate: 1_500,
  workers: 2,
  batchSize: 10,
  shows: 4,
  allocs: 2,
  foldersPerShow: 2,
  jobsPerFolder: 5,
  hostsPerAlloc: 4,
  procs: 200,
  listenerKills: 3,
  floodTransactions: 40,
  leaseSeconds: 1,
};

/** What `npm run stress` runs and docs/performance.md reports. */
export const DEFAULT_SCALE: StressScale = {
  phaseMs: 8_000,
  rate: 0,
  workers: 4,
  batchSize: 25,
  shows: 12,
  allocs: 4,
  foldersPerShow: 4,
  jobsPerFolder: 25,
  hostsPerAlloc: 25,
  procs: 20_000,
  listenerKills: 10,
  floodTransactions: 400,
  leaseSeconds: 2,
};

const ENV_KNOBS: Record<keyof StressScale, string> = {
  phaseMs: 'STRESS_PHASE_MS',
  rate: 'STRESS_RATE',
  workers: 'STRESS_WORKERS',
  batchSize: 'STRESS_BATCH',
  shows: 'STRESS_SHOWS',
  allocs: 'STRESS_ALLOCS',
  foldersPerShow: 'STRESS_FOLDERS_PER_SHOW',
  jobsPerFolder: 'STRESS_JOBS_PER_FOLDER',
  hostsPerAlloc: 'STRESS_HOSTS_PER_ALLOC',
  procs: 'STRESS_PROCS',
  listenerKills: 'STRESS_LISTENER_KILLS',
  floodTransactions: 'STRESS_FLOOD_TRANSACTIONS',
  leaseSeconds: 'STRESS_LEASE_SECONDS',
};

/** The base scale with every `STRESS_*` variable that is set applied on top. */
export function scaleFromEnv(base: StressScale, env: NodeJS.ProcessEnv = process.env): StressScale {
  const scale = { ...base };
  for (const [field, name] of Object.entries(ENV_KNOBS) as [keyof StressScale, string][]) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < 0)
      throw new Error(`${name} must be a number >= 0, got ${JSON.stringify(raw)}`);
    scale[field] = value;
  }
  return scale;
}

export function describeKnobs(): string {
  return Object.values(ENV_KNOBS).join(', ');
}

// ---- databases ------------------------------------------------------------------------------

/** A throwaway database of a phase (test/support/db.ts), with its name. */
export type Database = TestDatabase & { name: string };

/**
 * A fresh database with the project's schema, on the server of `adminUrl`. Its pool's
 * sessions are named `cueacct-stress`, apart from the daemon's `cueacct*` ones.
 */
export function createDatabase(adminUrl: string): Promise<Database> {
  return createDatabaseOn(adminUrl, {
    namePrefix: 'cueacct_stress_',
    pool: { connect_timeout: 5, connection: { application_name: 'cueacct-stress' } },
  });
}

// ---- the daemon -----------------------------------------------------------------------------

export interface RunningDaemon {
  daemon: Daemon;
  api: ApiClient;
  url: string;
  stop(): Promise<number | null>;
}

/**
 * `cueacct serve` (the built CLI) on a free loopback port, waited until ready (bootstrap done,
 * lock held). Log level info: at debug every rejected booking is a log line.
 */
export async function startServe(
  databaseUrl: string,
  args: string[] = [],
  timeoutMs = 30_000,
): Promise<RunningDaemon> {
  const daemon = await startDaemon({ databaseUrl, args, env: { CUEACCT_LOG_LEVEL: 'info' }, timeoutMs });
  const api = new ApiClient({ url: daemon.url, maxSockets: 4, timeoutMs: 30_000 });
  try {
    // Ready, and past the catch-up recompute it runs once its listener is up: a phase's load
    // then starts from a settled daemon (a recompute overlapping releases leaves counters high
    // until the next one — safe, but it would blur the phases that check exact counters).
    await until(
      async () => {
        const status = await api.get('/v1/status');
        return status.status === 200 && status.body.ready === true && status.body.last_recompute?.at != null;
      },
      timeoutMs,
      'the daemon to be ready and past its first recompute',
    );
  } catch (err) {
    api.close();
    await daemon.stop('SIGKILL');
    throw new Error(`${String(err)}\n${tail(daemon.output())}`);
  }
  return {
    daemon,
    api,
    url: daemon.url,
    stop: async () => {
      api.close();
      return daemon.stop();
    },
  };
}

/** The last lines of a daemon's log, for an error message. */
export function tail(text: string, lines = 15): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** Terminate this database's LISTEN connection(s) of the daemon; returns how many. */
export async function killListener(sql: Sql): Promise<number> {
  const rows = await sql<{ ok: boolean }[]>`
    SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity
    WHERE application_name = 'cueacct-listener' AND datname = current_database() AND pid <> pg_backend_pid()`;
  return rows.filter((r) => r.ok).length;
}

// ---- a private PostgreSQL that can be restarted ---------------------------------------------

export interface RestartableCluster {
  /** Admin URL; stays valid across restarts (same port). */
  url: string;
  /** Fast shutdown, then start again on the same port and data directory. Resolves when it answers. */
  restart(): Promise<{ downMs: number }>;
  stop(): Promise<void>;
}

/**
 * A throwaway cluster (src/embedded/cluster.ts) for the database-restart phase: the shared
 * server at 127.0.0.1:5432 is never restarted. The first postmaster is the cluster module's;
 * a restart stops it (SIGINT, fast shutdown) and runs `postgres` again here with the same
 * data directory, port and settings, as the data directory's owner.
 */
export async function startRestartableCluster(): Promise<RestartableCluster> {
  const settings = { max_connections: '100' };
  const cluster: EmbeddedCluster = await startCluster({ settings });
  let current: { pid: number; child?: ChildProcess } = { pid: cluster.pid };

  const stopPostmaster = async () => {
    try {
      process.kill(current.pid, 'SIGINT');
    } catch {
      return;
    }
    await until(async () => !alive(current.pid), 30_000, `postgres ${current.pid} to stop`);
  };

  const launch = async () => {
    const owner = statSync(cluster.dataDir);
    const args = ['-D', cluster.dataDir, '-p', String(cluster.port), '-k', cluster.socketDir];
    const all = {
      listen_addresses: '127.0.0.1',
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      ...settings,
    };
    for (const [k, v] of Object.entries(all)) args.push('-c', `${k}=${v}`);
    const child = spawn(join(cluster.binDir, 'postgres'), args, {
      ...(process.getuid?.() === 0 ? { uid: owner.uid, gid: owner.gid } : {}),
      cwd: cluster.baseDir,
      detached: true,
      stdio: 'ignore',
    });
    const kill = () => child.kill('SIGQUIT');
    process.once('exit', kill);
    child.once('exit', () => process.removeListener('exit', kill));
    current = { pid: child.pid!, child };
    await until(() => serverAnswers(cluster.url, 1_000), 30_000, 'the restarted postgres to answer');
  };

  return {
    url: cluster.url,
    restart: async () => {
      const started = Date.now();
      await stopPostmaster();
      await launch();
      return { downMs: Date.now() - started };
    },
    stop: async () => {
      if (current.child !== undefined) await stopPostmaster();
      await cluster.stop();
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
