import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  DEFAULT_CORE_MULTIPLIER,
  assertMultiplier,
  bookedCoresFromCenticores,
  capCoresFromCenticores,
  coresToCenticores,
} from '../../src/core/units.js';

const M = DEFAULT_CORE_MULTIPLIER;

describe('DEFAULT_CORE_MULTIPLIER', () => {
  it('is 100', () => expect(M).toBe(100));
});

describe('bookedCoresFromCenticores', () => {
  it('divides once, after the sum (floor-after-sum)', () => {
    // Three procs of 150 centicores: 4 whole cores from the sum, 3 if each were divided first.
    const procs = [150, 150, 150];
    const sum = procs.reduce((a, b) => a + b, 0);
    expect(bookedCoresFromCenticores(sum, M)).toBe(4);
    expect(procs.map((p) => bookedCoresFromCenticores(p, M)).reduce((a, b) => a + b, 0)).toBe(3);
  });

  it.each([
    [0, 0],
    [99, 0],
    [100, 1],
    [199, 1],
    [200, 2],
    [1050, 10],
  ])('%i centicores -> %i cores', (centi, cores) => {
    expect(bookedCoresFromCenticores(centi, M)).toBe(cores);
  });

  it('truncates toward zero for a (never expected) negative sum', () => {
    expect(bookedCoresFromCenticores(-150, M)).toBe(-1);
    expect(Object.is(bookedCoresFromCenticores(-50, M), 0)).toBe(true);
  });

  it('accepts the bigint and string forms PG SUMs come back as', () => {
    expect(bookedCoresFromCenticores(12345n, M)).toBe(123);
    expect(bookedCoresFromCenticores('12345', M)).toBe(123);
    expect(bookedCoresFromCenticores('0', M)).toBe(0);
    // exact above 2^53 in the input, as long as the result is a safe integer
    expect(bookedCoresFromCenticores('900719925474099112345', 100_000)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('honours a non-default multiplier', () => {
    expect(bookedCoresFromCenticores(999, 10)).toBe(99);
    expect(bookedCoresFromCenticores(999, 1)).toBe(999);
  });

  it('rejects non-integer inputs and out-of-range results with a clear error', () => {
    expect(() => bookedCoresFromCenticores(1.5, M)).toThrow('centicore sum must be an integer, got 1.5');
    expect(() => bookedCoresFromCenticores(Number.NaN, M)).toThrow('got NaN');
    expect(() => bookedCoresFromCenticores('12.5', M)).toThrow(
      'centicore sum must be an integer, got "12.5"',
    );
    expect(() => bookedCoresFromCenticores('', M)).toThrow('got ""');
    expect(() => bookedCoresFromCenticores('abc', M)).toThrow('got "abc"');
    expect(() => bookedCoresFromCenticores(null as unknown as number, M)).toThrow('got null');
    expect(() => bookedCoresFromCenticores(10n ** 30n, M)).toThrow('outside the safe integer range');
  });

  it('property: equals floor(sum / multiplier) for non-negative sums, in every input form', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.integer({ min: 1, max: 10_000 }), (sum, m) => {
        const want = Math.floor(sum / m);
        // floating division can round up near huge values: cross-check against bigint
        const exact = Number(BigInt(sum) / BigInt(m));
        expect(bookedCoresFromCenticores(sum, m)).toBe(exact);
        expect(bookedCoresFromCenticores(BigInt(sum), m)).toBe(exact);
        expect(bookedCoresFromCenticores(String(sum), m)).toBe(exact);
        expect(Math.abs(exact - want)).toBeLessThanOrEqual(1);
      }),
    );
  });
});

describe('capCoresFromCenticores', () => {
  it.each([
    [-1, -1],
    [-100, -1],
    [-5, -1],
    [-2_147_483_648, -1],
    [0, 0],
    [100, 1],
    [150, 1],
    [20_000, 200],
    [10_000, 100],
  ])('%i centicores -> %i', (centi, cores) => {
    expect(capCoresFromCenticores(centi, M)).toBe(cores);
  });

  it('a positive cap below one core becomes 0 (documented hazard, see JSDoc)', () => {
    expect(capCoresFromCenticores(50, M)).toBe(0);
  });

  it('accepts bigint and string caps (BIGINT columns)', () => {
    expect(capCoresFromCenticores(-1n, M)).toBe(-1);
    expect(capCoresFromCenticores('-1', M)).toBe(-1);
    expect(capCoresFromCenticores(20_000n, M)).toBe(200);
    expect(capCoresFromCenticores('20000', M)).toBe(200);
    expect(capCoresFromCenticores('0', M)).toBe(0);
  });

  it('rejects non-integers', () => {
    expect(() => capCoresFromCenticores(1.5, M)).toThrow('centicore cap must be an integer, got 1.5');
    expect(() => capCoresFromCenticores('-1.0', M)).toThrow('centicore cap must be an integer');
  });

  it('property: negative -> -1, otherwise truncating division', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -1_000_000, max: 1_000_000 }),
        fc.integer({ min: 1, max: 1000 }),
        (cap, m) => {
          const got = capCoresFromCenticores(cap, m);
          expect(got).toBe(cap < 0 ? -1 : Math.floor(cap / m));
        },
      ),
    );
  });
});

describe('coresToCenticores', () => {
  it('multiplies', () => {
    expect(coresToCenticores(0, M)).toBe(0);
    expect(coresToCenticores(4, M)).toBe(400);
    expect(coresToCenticores(-1, M)).toBe(-100);
    expect(coresToCenticores(7, 1000)).toBe(7000);
  });

  it('round-trips through both readers', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 1, max: 1000 }), (cores, m) => {
        const centi = coresToCenticores(cores, m);
        expect(bookedCoresFromCenticores(centi, m)).toBe(cores);
        expect(capCoresFromCenticores(centi, m)).toBe(cores);
      }),
    );
    expect(capCoresFromCenticores(coresToCenticores(-1, M), M)).toBe(-1);
  });

  it('rejects non-integer cores and overflow', () => {
    expect(() => coresToCenticores(1.5, M)).toThrow('cores must be an integer, got 1.5');
    expect(() => coresToCenticores(Number.MAX_SAFE_INTEGER, M)).toThrow('outside the safe integer range');
  });
});

describe('assertMultiplier', () => {
  it('accepts positive safe integers', () => {
    for (const n of [1, 10, 100, 1000, Number.MAX_SAFE_INTEGER])
      expect(() => assertMultiplier(n)).not.toThrow();
  });

  it.each([
    [0, 'got 0'],
    [-100, 'got -100'],
    [1.5, 'got 1.5'],
    [Number.NaN, 'got NaN'],
    [Infinity, 'got Infinity'],
    [2 ** 53, `got ${2 ** 53}`],
    ['100', 'got "100"'],
    [100n, 'got 100n'],
    [null, 'got null'],
    [undefined, 'got undefined'],
  ])('rejects %s', (n, text) => {
    expect(() => assertMultiplier(n)).toThrow(`core multiplier must be a positive integer, ${text}`);
  });

  it('every conversion validates its multiplier', () => {
    expect(() => bookedCoresFromCenticores(100, 0)).toThrow('core multiplier');
    expect(() => capCoresFromCenticores(100, -1)).toThrow('core multiplier');
    expect(() => coresToCenticores(1, 2.5)).toThrow('core multiplier');
  });
});
