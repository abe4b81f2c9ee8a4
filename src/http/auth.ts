/**
 * Bearer-token check for the HTTP API. The comparison is constant-time: both sides are
 * hashed to fixed-length digests first, so neither the content nor the length of the
 * configured token leaks through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * A checker for `Authorization: Bearer <token>`. The scheme is case-insensitive (RFC 9110);
 * surrounding spaces are ignored.
 */
export function bearerChecker(token: string): (header: string | undefined) => boolean {
  const expected = digest(token);
  return (header) => {
    if (header === undefined || header.length < 7) return false;
    if (header.slice(0, 7).toLowerCase() !== 'bearer ') return false;
    return timingSafeEqual(digest(header.slice(7).trim()), expected);
  };
}
