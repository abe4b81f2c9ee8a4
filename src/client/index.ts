/**
 * The `cueacct` package's library entry: `import { AccountingClient } from 'cueacct'`.
 * See docs/api.md "Writing a scheduler against cueacct".
 */
export {
  AccountingClient,
  type AccountingClientOptions,
  type AdminAction,
  type BatchEntry,
  type BatchOp,
  type BookAnswer,
  type InsertContext,
  type RetryPolicy,
  type WithBookingOptions,
  type WithBookingOutcome,
} from './client.js';
export { AccountingClientError, isAccountingClientError, type ClientErrorKind } from './errors.js';
export { DEFAULT_DAEMON_URL, parseDaemonAddress, type DaemonAddress } from './address.js';
export { parseRetryAfter, type RawAnswer } from './transport.js';
export type {
  BookResponse,
  ConfirmResponse,
  RollbackResponse,
  StateResponse,
  StatusResponse,
  VertexState,
} from '../api/types.js';
export type { BookingRequest, LimitTable } from '../core/types.js';
