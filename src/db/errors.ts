/**
 * PostgreSQL errors that retrying cannot fix: wrong credentials, a database that does not
 * exist, or a database without the Cuebot tables and columns this service reads.
 */
const CONFIGURATION_SQLSTATES = new Set([
  '28000', // invalid_authorization_specification
  '28P01', // invalid_password
  '3D000', // invalid_catalog_name: the database does not exist
  '42P01', // undefined_table
  '42703', // undefined_column
  '42501', // insufficient_privilege
]);

export function isConfigurationError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && CONFIGURATION_SQLSTATES.has(code);
}

/** Socket/DNS error codes (Node, postgres.js) that mean "cannot reach it". */
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'ENOENT', // a unix socket path with nothing behind it
]);

/** A socket or DNS failure: the database (or, for a CLI command, the daemon) cannot be reached. */
export function isUnreachableError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNREACHABLE_CODES.has(code);
}
