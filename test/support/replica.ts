/**
 * A throwaway PostgreSQL primary with one streaming hot standby (made by `pg_basebackup -R`),
 * for failover tests. Both are clusters of src/embedded/cluster.ts (run as an unprivileged
 * user when we are root, private socket dir, free loopback ports), from the system PostgreSQL
 * binaries (default /usr/lib/postgresql/15/bin, or CUEACCT_REPLICA_PG_BIN).
 *
 * Replication is synchronous (`synchronous_standby_names = '*'`): a commit the client saw is on
 * the standby, so after a promotion the new primary holds every proc the "scheduler" inserted and
 * a test can compare counters with `SUM(proc)` exactly. (With asynchronous replication the last
 * commits before a crash can be lost — for Cuebot as much as for cueacct.)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';

import { startCluster, type EmbeddedCluster } from '../../src/embedded/cluster.js';
import { waitFor } from './db.js';

export const REPLICA_PG_BIN = process.env.CUEACCT_REPLICA_PG_BIN ?? '/usr/lib/postgresql/15/bin';

/** Whether the binaries the pair needs are installed (tests skip with a reason otherwise). */
export function replicaBinariesPresent(binDir = REPLICA_PG_BIN): boolean {
  return ['initdb', 'postgres', 'pg_basebackup'].every((b) => existsSync(join(binDir, b)));
}

export interface ReplicatedPair {
  primary: EmbeddedCluster;
  standby: EmbeddedCluster;
  /** `postgres://postgres@127.0.0.1:<primary>,127.0.0.1:<standby>/<database>?target_session_attrs=read-write` */
  multiHostUrl(database: string): string;
  /** Single-host superuser URL of one member, for `database`. */
  urlOf(member: EmbeddedCluster, database: string): string;
  /** Wait until the standby streams from the primary as a synchronous standby. */
  waitStreaming(timeoutMs?: number): Promise<void>;
  /** Crash the primary: immediate shutdown (SIGQUIT to its postmaster, by pid), wait for its exit. */
  crashPrimary(): Promise<void>;
  /** Promote the standby (`pg_promote()`, what `pg_ctl promote` does) and wait until it accepts writes. */
  promoteStandby(timeoutMs?: number): Promise<void>;
  /** Stop both servers (by pid) and remove their data dirs. Idempotent. */
  stop(): Promise<void>;
}

async function query<T extends object>(url: string, text: string): Promise<T[]> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined, connect_timeout: 5 });
  try {
    return (await sql.unsafe(text)) as unknown as T[];
  } finally {
    await sql.end({ timeout: 1 });
  }
}

export async function startReplicatedPair(binDir = REPLICA_PG_BIN): Promise<ReplicatedPair> {
  const primary = await startCluster({
    binDir,
    settings: {
      wal_level: 'replica',
      max_wal_senders: '4',
      synchronous_standby_names: '*',
      synchronous_commit: 'on',
    },
  });
  let standby: EmbeddedCluster;
  try {
    // No synchronous_standby_names here: once promoted it has no standby to wait for.
    standby = await startCluster({ binDir, standbyOf: { port: primary.port } });
  } catch (err) {
    await primary.stop();
    throw err;
  }

  const urlOf = (member: EmbeddedCluster, database: string) =>
    `postgres://postgres@127.0.0.1:${member.port}/${database}`;
  const pair: ReplicatedPair = {
    primary,
    standby,
    urlOf,
    multiHostUrl: (database) =>
      `postgres://postgres@127.0.0.1:${primary.port},127.0.0.1:${standby.port}/${database}` +
      '?target_session_attrs=read-write',
    waitStreaming: async (timeoutMs = 30_000) => {
      await waitFor(
        async () => {
          const rows = await query<{ n: number }>(
            urlOf(primary, 'postgres'),
            `SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming' AND sync_state = 'sync'`,
          );
          return rows[0]?.n === 1;
        },
        { timeoutMs, intervalMs: 100, message: 'the standby streaming synchronously' },
      );
    },
    crashPrimary: async () => {
      process.kill(primary.pid, 'SIGQUIT');
      await primary.stop(); // waits for the exit, then removes the data dir
    },
    promoteStandby: async (timeoutMs = 60_000) => {
      await query(urlOf(standby, 'postgres'), `SELECT pg_promote(true, ${Math.ceil(timeoutMs / 1000)})`);
      await waitFor(
        async () => {
          const [row] = await query<{ r: boolean }>(
            urlOf(standby, 'postgres'),
            'SELECT pg_is_in_recovery() AS r',
          );
          return row?.r === false;
        },
        { timeoutMs, intervalMs: 100, message: 'the promoted standby accepting writes' },
      );
    },
    stop: async () => {
      await Promise.allSettled([standby.stop(), primary.stop()]);
    },
  };
  try {
    await pair.waitStreaming();
  } catch (err) {
    await pair.stop();
    throw err;
  }
  return pair;
}
