import { describe, expect, it } from 'vitest';
import type { Booking } from '../../src/core/store.js';
import { LeaseBook } from '../../src/service/leases.js';

const booking = (n: number) => ({ n }) as unknown as Booking;

describe('LeaseBook', () => {
  it('takes a lease once by its id; unknown and non-canonical ids name nothing', () => {
    const book = new LeaseBook(1_000);
    const lease = book.add(booking(1), 0);
    const [prefix, digits, secret] = lease.id
      .match(/^([0-9a-f]{8}-)([0-9a-z]+)-([A-Za-z0-9_-]{16})$/)!
      .slice(1);
    expect(book.take(`${prefix}0${digits}-${secret}`)).toBeUndefined();
    expect(book.take(`${prefix}1-${secret}`)).toBeUndefined(); // never issued
    expect(book.take(`00000000-${digits}-${secret}`)).toBeUndefined(); // another process
    expect(book.take(`${prefix}${digits}`)).toBeUndefined(); // no secret
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

  it('names a lease only with its secret: a neighbour id with a guessed secret is unknown, also after expiry', () => {
    const book = new LeaseBook(1_000);
    const mine = book.add(booking(1), 0);
    const theirs = book.add(booking(2), 0);
    // Another client knows its own id and guesses ours: same prefix, sequence - 1, any secret.
    const guess = (of: string, secret: string) => of.replace(/-[A-Za-z0-9_-]{16}$/, `-${secret}`);
    const [, seqText] = theirs.id.match(/^[0-9a-f]{8}-([0-9a-z]+)-/)!;
    const neighbour = theirs.id.replace(`-${seqText}-`, `-${(parseInt(seqText!, 36) - 1).toString(36)}-`);
    expect(neighbour.slice(0, -16)).toBe(mine.id.slice(0, -16)); // the guessable part is right
    for (const secret of [
      'AAAAAAAAAAAAAAAA',
      theirs.id.slice(-16),
      mine.id.slice(-16).replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')),
    ]) {
      expect(book.take(guess(neighbour, secret))).toBeUndefined();
    }
    book.sweep(1_000, () => undefined);
    expect(book.take(guess(mine.id, 'AAAAAAAAAAAAAAAA'))).toBeUndefined(); // not even "expired"
    expect(book.take(mine.id)).toMatchObject({ expired: true });
  });

  it('draws ids with 96 random bits: no two alike across many bookings and fills of the pool', () => {
    const book = new LeaseBook(1_000);
    const secrets = new Set<string>();
    for (let i = 0; i < 5_000; i++) secrets.add(book.add(booking(i), 0).id.slice(-16));
    expect(secrets.size).toBe(5_000);
    for (const secret of secrets) expect(Buffer.from(secret, 'base64url').length).toBe(12);
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
