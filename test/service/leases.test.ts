import { describe, expect, it } from 'vitest';
import type { Booking } from '../../src/core/store.js';
import { LeaseBook } from '../../src/service/leases.js';

const booking = (n: number) => ({ n }) as unknown as Booking;

describe('LeaseBook', () => {
  it('takes a lease once by its id; unknown and non-canonical ids name nothing', () => {
    const book = new LeaseBook(1_000);
    const lease = book.add(booking(1), 0);
    const [prefix, digits] = [lease.id.slice(0, lease.id.lastIndexOf('-') + 1), lease.id.split('-').pop()!];
    expect(book.take(`${prefix}0${digits}`)).toBeUndefined();
    expect(book.take(`${prefix}1`)).toBeUndefined(); // never issued
    expect(book.take(`00000000-${digits}`)).toBeUndefined(); // another process
    expect(book.take(lease.id)).toEqual({ lease });
    expect(book.take(lease.id)).toBeUndefined();
    expect(book.size).toBe(0);
  });

  it('sweeps expired leases in creation order, each once, and remembers them for one more lease', () => {
    const book = new LeaseBook(1_000);
    const [a, b, c] = [book.add(booking(1), 0), book.add(booking(2), 10), book.add(booking(3), 20)];
    book.take(b.id);
    const settled: unknown[] = [];
    expect(book.sweep(999, (l) => settled.push(l.booking))).toBe(0);
    expect(book.sweep(1_020, (l) => settled.push(l.booking))).toBe(2);
    expect(settled).toEqual([booking(1), booking(3)]);
    expect(book.sweep(5_000, () => settled.push('again'))).toBe(0);
    expect(book.take(c.id)).toBeUndefined(); // forgotten: 1 lease period after expiry has passed
    const d = book.add(booking(4), 5_000);
    book.sweep(6_000, () => undefined);
    expect(book.take(d.id)).toEqual({ expired: true, lease: d }); // handed back once, for a late confirm
    expect(book.take(d.id)).toBeUndefined();
    expect(book.take(a.id)).toBeUndefined();
  });

  it('keeps every id valid across queue compaction', () => {
    const book = new LeaseBook(1_000);
    const early = Array.from({ length: 3_000 }, (_, i) => book.add(booking(i), 0));
    for (const lease of early.slice(0, 2_500)) book.take(lease.id);
    const late = book.add(booking(9_999), 500);
    expect(book.sweep(100, () => undefined)).toBe(0); // compacts the taken prefix
    expect(book.take(early[2_600]!.id)).toEqual({ lease: early[2_600] });
    expect(book.take(early[10]!.id)).toBeUndefined();
    expect(book.sweep(1_000, () => undefined)).toBe(499);
    expect(book.take(early[2_999]!.id)).toEqual({ expired: true, lease: early[2_999] });
    expect(book.take(late.id)).toEqual({ lease: late });
    expect(book.size).toBe(0);
  });
});
