import type {
  BookRefusal,
  BookResponse,
  DrainShowResponse,
  UndrainShowResponse,
  ConfirmResponse,
  RollbackResponse,
  StateResponse,
  StatusResponse,
  VertexDetailResponse,
} from '../api/types.js';
import type { BookingRequest, VertexKind } from '../core/types.js';
import type { StateCursor } from './state-cursor.js';

export type BookResult = BookResponse | BookRefusal | { error: 'not_ready' };

export interface StateQuery {
  vertex?: VertexKind;
  /** Show id or name. */
  show?: string;
  /** Keep only the first N after sorting (one answer, no cursor). */
  top?: number;
  /** `blocked`: most refused first (last minute's rate, then the total). */
  sort?: 'utilization' | 'name' | 'cores' | 'blocked';
  /** Without `top`: vertices per page (default {@link STATE_PAGE_DEFAULT}). */
  limit?: number;
  /** Without `top`: where the page starts (`next_cursor` of the previous page). */
  cursor?: StateCursor;
}

/** Vertices in one page of `GET /v1/state` unless `limit` says otherwise. */
export const STATE_PAGE_DEFAULT = 1_000;
/** Largest page (`limit`) and largest `top`: what one answer may carry without stalling bookings. */
export const STATE_PAGE_MAX = 5_000;

/**
 * What the HTTP API (and an in-process TypeScript scheduler) needs from the accounting
 * service. Booking operations are synchronous: each is one critical section of the store.
 */
export interface BookingService {
  /** Seeded and holding the N=1 lock: bookings are accepted. */
  readonly ready: boolean;
  /**
   * Synchronous when every key is known (the fast path); a promise when a key must first be
   * read from the database (a new job, folder or subscription, or a job that may have moved).
   * `wait` false (after {@link prepare}): never wait; a key still unknown answers `resolving`.
   */
  book(request: BookingRequest, wait?: boolean): BookResult | Promise<BookResult>;
  /**
   * Read the unknown keys of several bookings in one go before they are booked one by one
   * (a batch); undefined when there is nothing to read.
   */
  prepare?(requests: readonly BookingRequest[]): Promise<void> | undefined;
  confirm(booking: string): ConfirmResponse;
  rollback(booking: string): RollbackResponse;
  /** May be built over several event-loop turns, so bookings never wait behind a big read. */
  state(query: StateQuery): StateResponse | Promise<StateResponse>;
  /** One vertex with the caps in its path and its history; undefined when unknown or unpublished. */
  vertexDetail?(kind: VertexKind, key: string): Promise<VertexDetailResponse | undefined>;
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
