/**
 * The N=1 advisory lock's statements (see src/daemon/lock.ts). Each runs on the lock's own
 * dedicated session: a session-level advisory lock belongs to the backend that took it.
 */
import type { Sql } from 'postgres';

/** The advisory lock key (one bigint): ASCII "cueacct" read as a number. Documented in docs/operations.md. */
export const ADVISORY_LOCK_KEY = 0x63756561636374n;

const KEY = ADVISORY_LOCK_KEY.toString();

export interface LockHolder {
  pid: number;
  applicationName: string;
  clientAddress: string | null;
  backendStart: string | null;
}

/** One try; `pid` is the backend that now owns the lock when `ok`. */
export async function tryAdvisoryLock(session: Sql): Promise<{ ok: boolean; pid: number }> {
  const [row] = await session<{ ok: boolean; pid: number }[]>`
    SELECT pg_try_advisory_lock(${KEY}::int8) AS ok, pg_backend_pid() AS pid`;
  return row!;
}

/**
 * Ownership, not connectivity: which backend answers, and whether that backend holds a
 * granted advisory lock on the key in this database. A reconnected session answers with
 * another pid and no lock.
 */
export async function proveOwnership(session: Sql): Promise<{ pid: number; held: boolean }> {
  const [row] = await session<{ pid: number; held: boolean }[]>`
    SELECT pg_backend_pid() AS pid, EXISTS (
      SELECT 1 FROM pg_locks l
      WHERE l.pid = pg_backend_pid() AND l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND ((l.classid::int8 << 32) | l.objid::int8) = ${KEY}::int8
    ) AS held`;
  return row!;
}

/** Who holds the lock now, from pg_locks and pg_stat_activity. */
export async function advisoryLockHolder(session: Sql): Promise<LockHolder | undefined> {
  const [row] = await session<LockHolder[]>`
    SELECT a.pid, a.application_name AS "applicationName", host(a.client_addr) AS "clientAddress",
           a.backend_start::text AS "backendStart"
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND ((l.classid::int8 << 32) | l.objid::int8) = ${KEY}::int8
    LIMIT 1`;
  return row;
}

export async function advisoryUnlock(session: Sql): Promise<void> {
  await session`SELECT pg_advisory_unlock(${KEY}::int8)`;
}
