/**
 * How the text of a farm-wide read is kept. Ids and names barely change between two reads, but
 * the driver makes a new string for every value of every row, and the read keeps its rows until
 * the pass ends: tens of thousands of strings that live just long enough to be copied by every
 * young-generation GC during the pass (the pauses bookings wait behind). An interner hands back
 * the instance the previous read kept, so the new strings die young.
 */
import type { PgInteger } from '../core/units.js';

/** Keeps one instance per text: what this read saw, and what the read before it saw. */
export class StringInterner {
  private current = new Map<string, string>();
  private previous = new Map<string, string>();

  /** The kept instance equal to `value` (or `value` itself, kept from now on). */
  readonly intern = (value: string): string => {
    const seen = this.current.get(value);
    if (seen !== undefined) return seen;
    const kept = this.previous.get(value) ?? value;
    this.current.set(kept, kept);
    return kept;
  };

  /** A read ended: texts it did not see are forgotten after the next one (memory follows the farm). */
  endRead(): void {
    this.previous = this.current;
    this.current = new Map();
  }

  /** Texts held (both generations), for tests. */
  get size(): number {
    let size = this.current.size;
    for (const key of this.previous.keys()) if (!this.current.has(key)) size++;
    return size;
  }
}

/** Keep text as read: what one-shot commands use. */
export const asRead = (value: string): string => value;

/** An integer the driver gives as text (int8) as a number when that is exact: no string to keep. */
export function compactInteger(value: PgInteger): PgInteger {
  if (typeof value !== 'string') return value;
  const n = Number(value);
  return Number.isSafeInteger(n) && String(n) === value ? n : value;
}
