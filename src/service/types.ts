import type {
  BookResponse,
  DrainShowResponse,
  UndrainShowResponse,
  ConfirmResponse,
  RollbackResponse,
  StateResponse,
  StatusResponse,
} from '../api/types.js';
import type { BookingRequest, VertexKind } from '../core/types.js';

export type BookResult = BookResponse | { error: 'not_ready' };

export interface StateQuery {
  vertex?: VertexKind;
  /** Show id or name. */
  show?: string;
  /** Keep only the first N after sorting. */
  top?: number;
  sort?: 'utilization' | 'name' | 'cores';
}

/**
 * What the HTTP API (and an in-process TypeScript scheduler) needs from the accounting
 * service. Booking operations are synchronous: each is one critical section of the store.
 */
export interface BookingService {
  /** Seeded and holding the N=1 lock: bookings are accepted. */
  readonly ready: boolean;
  book(request: BookingRequest): BookResult;
  confirm(booking: string): ConfirmResponse;
  rollback(booking: string): RollbackResponse;
  state(query: StateQuery): StateResponse;
  status(): StatusResponse;
  /** Run that pass now; resolves when a pass that started after the call completes. */
  recompute(): Promise<void>;
  reseed(): Promise<void>;
  refreshShows(): Promise<void>;
  /**
   * Phase one of a flip to Cuebot: refuse new bookings of the show and resolve once none is in
   * flight, or with `drain_timeout` (the drain then lifted) after `timeoutMs`. Optional: a
   * service without it answers 404 on the admin endpoint.
   */
  drainShow?(show: string, timeoutMs: number): Promise<DrainShowResponse | DrainTimeout>;
  undrainShow?(show: string): UndrainShowResponse;
}

export interface DrainTimeout {
  error: 'drain_timeout';
  show: string;
  /** Bookings of the show still in flight when the time ran out. */
  inflight: number;
}
