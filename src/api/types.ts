/**
 * The daemon's HTTP API shapes (SPEC §3), shared by the daemon, the CLI commands that talk
 * to it, and the TUI. JSON field names are snake_case on the wire.
 */
import type { DriftReport, LimitTable, VertexKind } from '../core/types.js';

export const API_PREFIX = '/v1';

export type BookResponse =
  | {
      result: 'applied';
      booking: string;
      lease_expires_at: string;
      /** The client contract (docs/api.md): never insert the proc row after this instant. */
      insert_deadline: string;
    }
  | { result: 'not_managed' }
  /** The show is being flipped to Cuebot (409): book elsewhere or retry after the flip. */
  | { result: 'show_draining'; show: string; reason: string }
  | { result: 'limit_exceeded'; table: LimitTable; current: number; limit: number };

export type ConfirmResponse = { result: 'confirmed' } | { error: 'unknown_booking' | 'lease_expired' };
export type RollbackResponse = { result: 'rolled_back' } | { error: 'unknown_booking' | 'lease_expired' };

/** `POST /v1/admin/drain-show`: 200 when nothing of the show is in flight any more. */
export interface DrainShowResponse {
  result: 'drained';
  show: string;
  waited_ms: number;
}

/** `POST /v1/admin/undrain-show`. */
export interface UndrainShowResponse {
  result: 'lifted' | 'not_draining';
  show: string;
}

export interface ErrorResponse {
  error: string;
  message?: string;
}

/** One vertex in `GET /v1/state`. Caps: burst for subscriptions (0 = reject all); <= 0 unlimited for folder/job. */
export interface VertexState {
  kind: VertexKind;
  /** Folder/job id; `show/alloc` for a subscription. */
  key: string;
  show: string | null;
  alloc: string | null;
  /** Human names from the database when known. */
  name: string | null;
  show_name: string | null;
  cores: number;
  gpus: number;
  inflight_cores: number;
  inflight_gpus: number;
  /** Settled by confirms that the last snapshot may not have seen (carried by the next overwrite). */
  settled_cores: number;
  settled_gpus: number;
  max_cores: number;
  max_gpus: number;
  /** cores / cap when the cap enforces (subscription burst, folder/job max > 0), else null. */
  utilization: number | null;
}

export interface StateResponse {
  epoch: number;
  vertices: VertexState[];
  /** Total number of vertices matching the filter before `top` cut the list. */
  total: number;
}

export interface PassStatus {
  at: string | null;
  duration_ms: number | null;
  ok: boolean | null;
  error: string | null;
}

export interface StatusResponse {
  version: string;
  uptime_s: number;
  ready: boolean;
  lock_held: boolean;
  listener: {
    connected: boolean;
    reconnects: number;
    /** `probe`: `cueacct notify-test` probes received on the internal cueacct_probe channel. */
    applied: { release: number; limit_change: number; managed_change: number; probe: number };
    dropped: number;
    last_notification_at: string | null;
  };
  last_recompute: PassStatus & { drift: DriftReport | null };
  last_reseed: PassStatus;
  last_shows_refresh: PassStatus;
  epoch: number;
  inflight: number;
  managed_shows: { id: string; name: string | null }[];
  /** Shows marked managed in the database whose seed failed; retried every refresh. */
  deferred_shows: { id: string; error: string }[];
  /** Shows whose bookings answer `show_draining` (a flip to Cuebot in progress). */
  draining_shows?: { id: string; reason: string }[];
  bookings: { applied: number; rejected: number; not_managed: number; lease_expired: number };
  counts: Record<VertexKind, number>;
}
