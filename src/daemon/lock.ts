/**
 * Enforced N=1 as a fenced lease (SPEC §1 "Enforced N=1", docs/architecture.md "The lock
 * is a lease"). A PostgreSQL session-level advisory lock belongs to one backend; this class
 * remembers that backend's pid at acquisition and keeps proving, several times per TTL and
 * each time under a hard deadline, that the same backend still holds the lock. The lease
 * is valid while the last successful proof *started* less than one TTL ago (monotonic
 * clock), so a holder that loses contact fails closed by itself within one TTL, whatever
 * its sockets say.
 *
 * The lock session is never reconnected transparently: on any loss (close, failed or late
 * proof, another pid) that postgres.js instance is destroyed and the next attempt opens a
 * new one.
 */
import type { Logger } from 'pino';
import type { Sql } from 'postgres';
import {
  advisoryLockHolder,
  advisoryUnlock,
  proveOwnership,
  tryAdvisoryLock,
  type LockHolder,
} from '../db/advisory-lock.js';
import { openSession, type ConnectionTarget } from '../db/connection.js';
import { withDeadline } from '../service/deadline.js';

export { ADVISORY_LOCK_KEY, type LockHolder } from '../db/advisory-lock.js';

export interface LockTimings {
  /** The lease: bookings only while the last successful proof started less than this ago. */
  ttlMs: number;
  /** Time between proof starts (several per TTL). */
  probeIntervalMs: number;
  /** Hard deadline of one proof; a late proof loses the lock. Well under the TTL. */
  probeTimeoutMs: number;
  /** Hard deadline of one acquisition attempt (connect included). */
  acquireTimeoutMs: number;
}

/** Five proofs per TTL, each allowed a third of it: one late proof is noticed long before the lease ends. */
export function lockTimings(ttlMs: number): LockTimings {
  return {
    ttlMs,
    probeIntervalMs: ttlMs / 5,
    probeTimeoutMs: ttlMs / 3,
    acquireTimeoutMs: Math.max(1_000, ttlMs / 2),
  };
}

export class AdvisoryLock {
  private session: Sql | undefined;
  /** Bumped whenever the session is replaced: late callbacks of an old one are ignored. */
  private sessionSeq = 0;
  private backendPid: number | undefined;
  /** performance.now() at the start of the last successful ownership proof. */
  private lastProofAt = Number.NEGATIVE_INFINITY;
  private acquiredAtMs = Number.NEGATIVE_INFINITY;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly target: ConnectionTarget,
    private readonly logger: Logger,
    /** Called once each time a held lock is lost. */
    private readonly onLost: (reason: string) => void,
    readonly timings: LockTimings = lockTimings(5_000),
    private readonly applicationName = 'cueacct-lock',
  ) {}

  get held(): boolean {
    return this.backendPid !== undefined;
  }

  /** The backend holding the lock for this process. */
  get pid(): number | undefined {
    return this.backendPid;
  }

  /** When the current acquisition was confirmed (performance.now()): the lock-delay counts from here. */
  get acquiredAt(): number {
    return this.acquiredAtMs;
  }

  /** Milliseconds since the last successful ownership proof started (held or not); null before the first. */
  leaseAgeMs(now = performance.now()): number | null {
    return Number.isFinite(this.lastProofAt) ? now - this.lastProofAt : null;
  }

  /** The booking path's check: a compare, so it fails closed at once even when a timer runs late. */
  leaseValid(now = performance.now()): boolean {
    return this.backendPid !== undefined && now - this.lastProofAt < this.timings.ttlMs;
  }

  /**
   * Try once on a fresh session when the last one is gone; true when this process now holds
   * the lock. Throws if the database does not answer in time. After release() it never
   * acquires.
   */
  async tryAcquire(): Promise<boolean> {
    if (this.closed) return false;
    if (this.held) return true;
    const { session, seq } = this.openIfNeeded();
    const started = performance.now();
    let row: { ok: boolean; pid: number };
    try {
      row = await withDeadline(tryAdvisoryLock(session), this.timings.acquireTimeoutMs, 'lock acquisition');
    } catch (error) {
      if (seq === this.sessionSeq) this.dropSession();
      throw error;
    }
    if (seq !== this.sessionSeq || this.closed) {
      // Replaced or released while the attempt ran: a lock it may have taken dies with its session.
      if (seq === this.sessionSeq) this.dropSession();
      return false;
    }
    if (!row.ok) return false;
    this.backendPid = row.pid;
    this.lastProofAt = started;
    this.acquiredAtMs = performance.now();
    this.scheduleProof(seq, started);
    return true;
  }

  /** Who holds the lock now (another daemon). */
  async holder(): Promise<LockHolder | undefined> {
    const { session, seq } = this.openIfNeeded();
    try {
      return await withDeadline(
        advisoryLockHolder(session),
        this.timings.acquireTimeoutMs,
        'lock holder query',
      );
    } catch (error) {
      if (seq === this.sessionSeq) this.dropSession();
      throw error;
    }
  }

  /** Release the lock and close its session; nothing acquires afterwards. */
  async release(): Promise<void> {
    this.closed = true;
    this.stopProof();
    const session = this.session;
    const held = this.held;
    this.backendPid = undefined;
    this.session = undefined;
    this.sessionSeq++;
    if (session === undefined) return;
    if (held) await withDeadline(advisoryUnlock(session), 2_000, 'lock release').catch(() => undefined);
    // Ending the session releases the lock anyway (the server ends the backend).
    await session.end({ timeout: held ? 2 : 0 }).catch(() => undefined);
  }

  private openIfNeeded(): { session: Sql; seq: number } {
    if (this.session === undefined) {
      const seq = ++this.sessionSeq;
      this.session = openSession(this.target, this.applicationName, {
        onclose: () => {
          if (seq === this.sessionSeq) this.lose('lock connection closed');
        },
      });
    }
    return { session: this.session, seq: this.sessionSeq };
  }

  private scheduleProof(seq: number, lastStart: number): void {
    const wait = Math.max(0, lastStart + this.timings.probeIntervalMs - performance.now());
    this.probeTimer = setTimeout(() => {
      this.probeTimer = undefined;
      void this.prove(seq);
    }, wait);
    this.probeTimer.unref();
  }

  private async prove(seq: number): Promise<void> {
    const session = this.session;
    if (session === undefined || seq !== this.sessionSeq) return;
    const started = performance.now();
    try {
      const proof = await withDeadline(
        proveOwnership(session),
        this.timings.probeTimeoutMs,
        'lock ownership proof',
      );
      if (seq !== this.sessionSeq) return;
      if (proof.pid !== this.backendPid || !proof.held) {
        this.lose(
          `ownership proof failed: backend ${proof.pid} (locked by ${this.backendPid}) holds it: ${proof.held}`,
        );
        return;
      }
      this.lastProofAt = started;
      this.scheduleProof(seq, started);
    } catch (error) {
      if (seq === this.sessionSeq) this.lose(error instanceof Error ? error.message : String(error));
    }
  }

  /** The session cannot be trusted any more: destroy it (the server then drops its lock too). */
  private lose(reason: string): void {
    const wasHeld = this.held;
    this.backendPid = undefined;
    this.stopProof();
    this.dropSession();
    if (!wasHeld || this.closed) return;
    this.logger.error({ reason }, 'advisory lock lost: bookings refused until it is re-acquired');
    this.onLost(reason);
  }

  private dropSession(): void {
    const session = this.session;
    this.session = undefined;
    this.sessionSeq++;
    void session?.end({ timeout: 0 }).catch(() => undefined);
  }

  private stopProof(): void {
    if (this.probeTimer !== undefined) clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
  }
}
