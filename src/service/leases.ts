/**
 * Booking leases: every applied booking gets an opaque id and an expiry. A client that
 * dies between book and confirm leaves its booking in flight; at expiry the service
 * settles it as a confirm would (SPEC §1 "Booking leases").
 *
 * All leases have the same duration, so expiry order is creation order: a FIFO queue with
 * a moving head makes add, take and sweep O(1) amortized.
 *
 * An id is `<process prefix>-<sequence in base 36>-<secret>`. The sequence is the lease's
 * position in the queue (plus an offset that moves when the queue is compacted), so a lookup
 * parses the id and indexes the queue: no Map keyed by id strings, whose hashing and growth
 * cost more than the rest of a booking (measured: about 1.2 µs per add at 2 M leases). The
 * secret (96 random bits) makes ids unguessable: the sequence alone would let any client
 * with the token confirm or roll back a neighbour's booking. A lookup names a lease only
 * when the whole id matches the one `add` made.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import type { Booking } from '../core/store.js';

export interface Lease {
  readonly id: string;
  /** The random part of `id`, compared on lookup. */
  readonly secret: string;
  readonly booking: Booking;
  readonly expiresAt: number;
}

/** `expired`: the lease was settled by expiry; its booking is handed back once, for a late confirm. */
export type TakeResult = { lease: Lease } | { expired: true; lease: Lease } | undefined;

/**
 * How long before its lease expires a client must have its proc row inserted (the booking's
 * `insert_deadline`): room for the INSERT's commit and for clock skew, so the proc is
 * committed before the lease settles and every later snapshot sees it. 10 s at the default
 * 120 s lease; a quarter of shorter leases.
 */
export function insertMarginMs(leaseMs: number): number {
  return Math.min(10_000, Math.floor(leaseMs / 4));
}

/** A queue slot: the lease while active, `undefined` once taken or expired. */
type Slot = Lease | undefined;

/** Random bytes in one id's secret: 96 bits, 16 base64url characters. */
export const SECRET_BYTES = 12;
const SECRET_CHARS = (SECRET_BYTES / 3) * 4;
/** Secrets drawn per `randomFillSync` call: one system call serves this many bookings. */
const SECRETS_PER_FILL = 1024;

/**
 * Unguessable id suffixes, drawn from the CSPRNG in blocks: one system call and one base64url
 * encoding serve 1,024 bookings (12 bytes are exactly 16 base64url characters, so each slice
 * of the encoded block is one secret). Per booking that costs a substring, not a call.
 */
class SecretSource {
  private readonly pool = Buffer.alloc(SECRET_BYTES * SECRETS_PER_FILL);
  private text = '';
  private offset = 0;

  next(): string {
    if (this.offset === this.text.length) {
      this.text = randomFillSync(this.pool).toString('base64url');
      this.offset = 0;
    }
    const start = this.offset;
    this.offset += SECRET_CHARS;
    return this.text.slice(start, this.offset);
  }
}

/**
 * Whether `id` ends with `secret` (the rest of the id is already checked), in a time that does
 * not depend on where they differ. Only the 16 secret characters are compared.
 */
function endsWithSecret(id: string, secret: string): boolean {
  const offset = id.length - SECRET_CHARS;
  if (offset < 1 || id.charCodeAt(offset - 1) !== 0x2d /* - */) return false;
  let diff = 0;
  for (let i = 0; i < SECRET_CHARS; i++) diff |= id.charCodeAt(offset + i) ^ secret.charCodeAt(i);
  return diff === 0;
}

export class LeaseBook {
  /** Leases by sequence number minus {@link base}; taken and expired ones are `undefined`. */
  private queue: Slot[] = [];
  /** Sequence number of `queue[0]`. */
  private base = 0;
  /** First slot not yet swept. */
  private head = 0;
  private activeCount = 0;
  /**
   * Recently expired leases by sequence number: their secret (only the owner hears "expired"),
   * the lease (a late confirm re-counts it) and when to forget them.
   */
  private readonly expired = new Map<number, { secret: string; forgetAt: number; lease: Lease }>();
  /** Ids of a previous process never collide with ours. */
  private readonly prefix = `${randomBytes(4).toString('hex')}-`;
  private readonly secrets = new SecretSource();
  private sequence = 0;

  constructor(readonly leaseMs: number) {}

  get size(): number {
    return this.activeCount;
  }

  add(booking: Booking, now: number): Lease {
    const secret = this.secrets.next();
    const lease: Lease = {
      id: `${this.prefix}${(this.sequence++).toString(36)}-${secret}`,
      secret,
      booking,
      expiresAt: now + this.leaseMs,
    };
    this.queue.push(lease);
    this.activeCount++;
    return lease;
  }

  /** Remove a lease to confirm or roll it back. */
  take(id: string): TakeResult {
    const seq = this.sequenceOf(id);
    if (seq < 0) return undefined;
    const index = seq - this.base;
    if (index >= this.head && index < this.queue.length) {
      const lease = this.queue[index];
      if (lease !== undefined && endsWithSecret(id, lease.secret)) {
        this.queue[index] = undefined;
        this.activeCount--;
        return { lease };
      }
      return undefined;
    }
    const expired = this.expired.get(seq);
    if (expired === undefined || !endsWithSecret(id, expired.secret)) return undefined;
    this.expired.delete(seq);
    return { expired: true, lease: expired.lease };
  }

  /** Hand every lease that expired by `now` to `settle`; returns how many. */
  sweep(now: number, settle: (lease: Lease) => void): number {
    let count = 0;
    const queue = this.queue;
    while (this.head < queue.length) {
      const lease = queue[this.head];
      if (lease !== undefined) {
        if (lease.expiresAt > now) break;
        queue[this.head] = undefined;
        this.activeCount--;
        this.expired.set(this.base + this.head, {
          secret: lease.secret,
          forgetAt: now + this.leaseMs,
          lease,
        });
        this.head++;
        settle(lease);
        count++;
      } else {
        this.head++;
      }
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.base += this.head;
      this.head = 0;
    }
    for (const [seq, { forgetAt }] of this.expired) {
      if (forgetAt > now) break;
      this.expired.delete(seq);
    }
    return count;
  }

  /** The sequence number of one of our ids (secret not checked yet), or -1 for any other string. */
  private sequenceOf(id: string): number {
    const prefix = this.prefix;
    if (!id.startsWith(prefix)) return -1;
    const dash = id.indexOf('-', prefix.length);
    if (dash < 0 || dash - prefix.length > 11) return -1;
    const digits = id.slice(prefix.length, dash);
    const seq = parseInt(digits, 36);
    // Only the exact text `add` made names the lease (no `0` padding, no upper case, no sign).
    if (!(seq >= 0 && seq < this.sequence) || seq.toString(36) !== digits) return -1;
    return seq;
  }
}
