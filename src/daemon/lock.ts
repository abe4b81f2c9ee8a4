/**
 * Enforced N=1: a PostgreSQL session-level advisory lock held on a dedicated connection for
 * the daemon's whole life. Two daemons booking against one database would each enforce
 * caps against half the truth; the lock makes that impossible (SPEC §1 "Enforced N=1").
 */
import type { Logger } from 'pino';
import type { Sql } from 'postgres';
import { openSession, type ConnectionTarget } from '../db/connection.js';

/** The advisory lock key (one bigint): ASCII "cueacct" read as a number. Documented in docs/operations.md. */
export const ADVISORY_LOCK_KEY = 0x63756561636374n;

/** How often the lock session is probed, so a silently dead connection is noticed. */
const PROBE_INTERVAL_MS = 2_000;

export interface LockHolder {
  pid: number;
  applicationName: string;
  clientAddress: string | null;
  backendStart: string | null;
}

export class AdvisoryLock {
  private session: Sql | undefined;
  private isHeld = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(
    private readonly target: ConnectionTarget,
    private readonly logger: Logger,
    /** Called once each time a held lock is lost (its connection died). */
    private readonly onLost: () => void,
    private readonly applicationName = 'cueacct-lock',
  ) {}

  get held(): boolean {
    return this.isHeld;
  }

  /** Try once; true when this process now holds the lock. Throws if the database is unreachable. */
  async tryAcquire(): Promise<boolean> {
    const session = this.openIfNeeded();
    const [row] = await session<
      { ok: boolean }[]
    >`SELECT pg_try_advisory_lock(${ADVISORY_LOCK_KEY.toString()}::int8) AS ok`;
    if (row?.ok !== true) return false;
    this.isHeld = true;
    this.startProbe();
    return true;
  }

  /** Who holds the lock now (another daemon), from pg_locks and pg_stat_activity. */
  async holder(): Promise<LockHolder | undefined> {
    const session = this.openIfNeeded();
    const [row] = await session<LockHolder[]>`
      SELECT a.pid, a.application_name AS "applicationName", host(a.client_addr) AS "clientAddress",
             a.backend_start::text AS "backendStart"
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
        AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND ((l.classid::int8 << 32) | l.objid::int8) = ${ADVISORY_LOCK_KEY.toString()}::int8
      LIMIT 1`;
    return row;
  }

  /** Release the lock and close its session. */
  async release(): Promise<void> {
    this.closing = true;
    this.stopProbe();
    const session = this.session;
    this.session = undefined;
    if (session === undefined) return;
    if (this.isHeld) {
      this.isHeld = false;
      await session`SELECT pg_advisory_unlock(${ADVISORY_LOCK_KEY.toString()}::int8)`.catch(() => undefined);
    }
    await session.end({ timeout: 2 });
  }

  private openIfNeeded(): Sql {
    this.session ??= openSession(this.target, this.applicationName, {
      onclose: () => this.lost('connection closed'),
    });
    return this.session;
  }

  private lost(reason: string): void {
    if (this.closing || !this.isHeld) return;
    this.isHeld = false;
    this.stopProbe();
    this.logger.error({ reason }, 'advisory lock lost: bookings refused until it is re-acquired');
    this.onLost();
  }

  private startProbe(): void {
    this.stopProbe();
    this.probeTimer = setInterval(() => {
      const session = this.session;
      if (session !== undefined) session`SELECT 1`.catch((error: unknown) => this.lost(String(error)));
    }, PROBE_INTERVAL_MS);
    this.probeTimer.unref();
  }

  private stopProbe(): void {
    if (this.probeTimer !== undefined) clearInterval(this.probeTimer);
    this.probeTimer = undefined;
  }
}
