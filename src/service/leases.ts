/**
 * Booking leases: every applied booking gets an opaque id and an expiry. A client that
 * dies between book and confirm leaves its booking in flight; at expiry the service
 * settles it as a confirm would (SPEC §1 "Booking leases").
 *
 * All leases have the same duration, so expiry order is creation order: a FIFO queue with
 * a moving head makes add, take and sweep O(1) amortized.
 */
import { randomBytes } from 'node:crypto';
import type { Booking } from '../core/store.js';

export interface Lease {
  readonly id: string;
  readonly booking: Booking;
  readonly expiresAt: number;
}

export type TakeResult = { lease: Lease } | { expired: true } | undefined;

export class LeaseBook {
  private readonly active = new Map<string, Lease>();
  private queue: Lease[] = [];
  private head = 0;
  /** Recently expired ids (with when to forget them), so a late confirm hears why. */
  private readonly expired = new Map<string, number>();
  /** Ids of a previous process never collide with ours. */
  private readonly prefix = randomBytes(4).toString('hex');
  private sequence = 0;

  constructor(readonly leaseMs: number) {}

  get size(): number {
    return this.active.size;
  }

  add(booking: Booking, now: number): Lease {
    const lease: Lease = {
      id: `${this.prefix}-${(this.sequence++).toString(36)}`,
      booking,
      expiresAt: now + this.leaseMs,
    };
    this.active.set(lease.id, lease);
    this.queue.push(lease);
    return lease;
  }

  /** Remove a lease to confirm or roll it back. */
  take(id: string): TakeResult {
    const lease = this.active.get(id);
    if (lease !== undefined) {
      this.active.delete(id);
      return { lease };
    }
    return this.expired.has(id) ? { expired: true } : undefined;
  }

  /** Hand every lease that expired by `now` to `settle`; returns how many. */
  sweep(now: number, settle: (lease: Lease) => void): number {
    let count = 0;
    while (this.head < this.queue.length) {
      const lease = this.queue[this.head]!;
      if (lease.expiresAt > now) break;
      this.head++;
      if (this.active.delete(lease.id)) {
        this.expired.set(lease.id, now + this.leaseMs);
        settle(lease);
        count++;
      }
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    for (const [id, forgetAt] of this.expired) {
      if (forgetAt > now) break;
      this.expired.delete(id);
    }
    return count;
  }
}
