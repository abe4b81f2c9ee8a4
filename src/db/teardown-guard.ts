/**
 * postgres.js 3.4.9 (the latest) can take a whole process down when a connection is
 * terminated at the wrong moment (pg_terminate_backend, a database restart):
 * - its array-type fetch after a (re)connect is a promise nobody awaits, so a backend killed
 *   in that window is an unhandled rejection;
 * - a write scheduled on a connection whose socket just closed throws
 *   "Cannot read properties of null (reading 'write')" from a timer.
 * Both concern a connection that is already gone and that postgres.js replaces. This guard
 * reports exactly these two and lets everything else crash as usual. (Dedicated sessions
 * also avoid the first by not fetching types: see connection.ts.)
 */

const TEARDOWN_CODES = new Set([
  '57P01', // terminating connection due to administrator command
  '57P02', // crash shutdown
  '57P03', // cannot connect now (starting up / shutting down)
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  'CONNECT_TIMEOUT',
]);

export type TeardownKind = 'rejection' | 'null_write';

function isTeardownRejection(reason: unknown): boolean {
  const code = (reason as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TEARDOWN_CODES.has(code);
}

function isNullWrite(error: unknown): boolean {
  return (
    error instanceof TypeError &&
    /reading 'write'/.test(error.message) &&
    /postgres[\\/]src[\\/]connection\.js|postgres\/src\/connection/.test(error.stack ?? '')
  );
}

/** Install process handlers for the two postgres.js teardown errors; `report` hears each. */
export function guardPostgresTeardown(report: (kind: TeardownKind, error: unknown) => void): void {
  process.on('unhandledRejection', (reason) => {
    if (!isTeardownRejection(reason)) throw reason;
    report('rejection', reason);
  });
  process.on('uncaughtException', (error) => {
    if (!isNullWrite(error)) {
      console.error(error);
      process.exit(70);
    }
    report('null_write', error);
  });
}
