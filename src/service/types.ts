import type {
  BookResponse,
  ConfirmResponse,
  RollbackResponse,
  StateResponse,
  StatusResponse,
  VertexDetailResponse,
} from '../api/types.js';
import type { BookingRequest, VertexKind } from '../core/types.js';

export type BookResult = BookResponse | { error: 'not_ready' };

export interface StateQuery {
  vertex?: VertexKind;
  /** Show id or name. */
  show?: string;
  /** Keep only the first N after sorting. */
  top?: number;
  /** `blocked`: most refused first (last minute's rate, then the total). */
  sort?: 'utilization' | 'name' | 'cores' | 'blocked';
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
  /** One vertex with the caps in its path and its history; undefined when unknown or unpublished. */
  vertexDetail?(kind: VertexKind, key: string): Promise<VertexDetailResponse | undefined>;
  status(): StatusResponse;
  /** Run that pass now; resolves when a pass that started after the call completes. */
  recompute(): Promise<void>;
  reseed(): Promise<void>;
  refreshShows(): Promise<void>;
}
