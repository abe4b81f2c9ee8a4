/**
 * Errors of the client library. `kind` says what went wrong so a caller (or the CLI, which
 * maps kinds to exit codes) can react without parsing messages. Messages never carry the token.
 */
export type ClientErrorKind =
  /** The daemon address is not usable (bad URL, relative socket path). */
  | 'usage'
  /** Cannot connect, connection reset, or no answer within the deadline. */
  | 'unreachable'
  /** HTTP 401: the token is missing or wrong. */
  | 'unauthorized'
  /** HTTP 503 after every retry (not ready, lock lost, key still resolving). */
  | 'unavailable'
  /** A 4xx/5xx answer that is not one of the above, or a body that is not JSON. */
  | 'rejected';

export class AccountingClientError extends Error {
  override name = 'AccountingClientError';

  constructor(
    readonly kind: ClientErrorKind,
    message: string,
    readonly details: { status?: number; code?: string; body?: unknown; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }
}

export function isAccountingClientError(err: unknown): err is AccountingClientError {
  return err instanceof AccountingClientError;
}
