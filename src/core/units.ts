/**
 * Core units at the PostgreSQL boundary (SPEC §1 "Units").
 *
 * PostgreSQL stores cores as centicores (cores × multiplier); the store works in whole
 * cores. Convert here and nowhere else. GPUs are whole units everywhere: never multiplied,
 * so nothing here touches them.
 */

export const DEFAULT_CORE_MULTIPLIER = 100;

/** What a PG integer comes back as: `number` (INT), `bigint` or decimal `string` (SUM, BIGINT). */
export type PgInteger = number | bigint | string;

/** Throws unless `n` is a positive safe integer. */
export function assertMultiplier(n: unknown): asserts n is number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n <= 0) {
    throw new Error(`core multiplier must be a positive integer, got ${show(n)}`);
  }
}

/**
 * Booked cores from a centicore total. Pass the SUM (sum first, divide once): dividing
 * each proc and then summing would lose up to one core per proc. Truncates toward zero.
 * A SUM over no rows is NULL in SQL: COALESCE it to 0 before calling.
 */
export function bookedCoresFromCenticores(sum: PgInteger, multiplier: number): number {
  assertMultiplier(multiplier);
  return toSafeNumber(toBigInt(sum, 'centicore sum') / BigInt(multiplier), 'booked cores');
}

/**
 * A cap in whole cores from a centicore cap: any negative value is the unlimited sentinel
 * and becomes exactly -1; 0 stays 0; a positive cap is divided, truncating.
 *
 * Note: a positive cap below one core (0 < cap < multiplier) becomes 0, which reads as
 * "reject everything" for a subscription burst but as "unlimited" for folder/job caps.
 */
export function capCoresFromCenticores(cap: PgInteger, multiplier: number): number {
  assertMultiplier(multiplier);
  const c = toBigInt(cap, 'centicore cap');
  if (c < 0n) return -1;
  return toSafeNumber(c / BigInt(multiplier), 'cap cores');
}

/** Whole cores to centicores (for writing PG rows, and tests). Plain multiplication. */
export function coresToCenticores(cores: number, multiplier: number): number {
  assertMultiplier(multiplier);
  if (!Number.isSafeInteger(cores)) throw new Error(`cores must be an integer, got ${show(cores)}`);
  const out = cores * multiplier;
  if (!Number.isSafeInteger(out))
    throw new Error(`${cores} cores × ${multiplier} is outside the safe integer range`);
  return out + 0;
}

const INTEGER_STRING = /^[+-]?\d+$/;

function toBigInt(v: PgInteger, what: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Error(`${what} must be an integer, got ${show(v)}`);
    return BigInt(v);
  }
  if (typeof v === 'string' && INTEGER_STRING.test(v)) return BigInt(v);
  throw new Error(`${what} must be an integer, got ${show(v)}`);
}

function toSafeNumber(v: bigint, what: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`${what} ${v} is outside the safe integer range`);
  return n + 0;
}

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 32 ? `${v.slice(0, 32)}…` : v);
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'object' && v !== null) return Array.isArray(v) ? 'an array' : 'an object';
  return String(v);
}
