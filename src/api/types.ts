/**
 * The daemon's HTTP API shapes (SPEC §3), shared by the daemon, the CLI commands that talk
 * to it, and the TUI. JSON field names are snake_case on the wire.
 */
import type { DriftReport, LimitTable, VertexKind } from '../core/types.js';

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

/**
 * A booking refused before any cap was checked (nothing was changed): a key the database does
 * not know (or that belongs to a show that is not scheduler-managed), a path that disagrees
 * with the job (each names the right value), or keys still being read from the database
 * (retryable: 503 with Retry-After).
 */
export type BookRefusal =
  | { error: 'unknown_job'; job: string }
  | { error: 'unknown_folder'; folder: string }
  | { error: 'unknown_subscription'; show: string; alloc: string }
  | { error: 'wrong_folder'; job: string; folder: string }
  | { error: 'wrong_show'; job: string; show: string }
  | { error: 'resolving'; retry_after_ms: number };

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
  /** Bookings this vertex's own caps refused (absent from daemons before 0.2). */
  refusals?: VertexRefusals;
}

/** Refusals by one vertex's caps: why a job or show is not getting cores. */
export interface VertexRefusals {
  /** Since the daemon started, all of the vertex's tables. */
  total: number;
  /** Per cap table of this vertex: subscription; folder + folder_gpus; job + job_gpus. */
  by_table: Partial<Record<LimitTable, number>>;
  /** Refusals per second over the last 1 and 5 minutes. */
  per_s_1m: number;
  per_s_5m: number;
  /** Time of the latest refusal, to the daemon's sample period (5 s); null if none recently. */
  last_at: string | null;
}

/** One sample of a vertex's history (`GET /v1/vertex`). */
export interface VertexHistoryPoint {
  at: string;
  utilization: number | null;
  /** Refusals per second since the previous sample. */
  refusals_per_s: number;
}

/** `GET /v1/vertex?kind=&key=`: one vertex, the caps in its path, which binds, and its recent history. */
export interface VertexDetailResponse {
  vertex: VertexState;
  /**
   * The caps a booking of this vertex passes: the show's subscriptions (one per alloc), then for
   * a job its folder, then the vertex itself (a folder: subscriptions then itself).
   */
  path: VertexState[];
  /** The cap refusing most over the last minute, else the fullest enforced cap; null if none enforces. */
  binding: { key: string; table: LimitTable; reason: 'refusing' | 'fullest' } | null;
  /** Samples of the last ~10 minutes, oldest first (empty when the vertex never refused nor neared its cap). */
  history: VertexHistoryPoint[];
  sample_ms: number;
}

export interface StateResponse {
  epoch: number;
  vertices: VertexState[];
  /** Total number of vertices matching the filter (all pages; before `top` cut the list). */
  total: number;
  /** Pass as `cursor` for the next page; null on the last page (and with `top`). */
  next_cursor?: string | null;
}

export interface PassStatus {
  at: string | null;
  duration_ms: number | null;
  ok: boolean | null;
  error: string | null;
}

/** The N=1 lock's state machine (docs/architecture.md "The lock is a lease"). */
export type LockState = 'standby' | 'acquiring' | 'syncing' | 'serving' | 'fenced' | 'stopped';

export interface LockStatus {
  state: LockState;
  /** Milliseconds since the last successful ownership probe started; null before the first. */
  lease_age_ms: number | null;
  /** The lease: bookings only while lease_age_ms is below this. */
  ttl_ms: number;
  /** Acquisitions after a wait or a loss (standby takeovers and re-acquires). */
  handovers: number;
  /** The PostgreSQL backend holding the lock for this daemon; null when not held. */
  backend_pid: number | null;
}

export interface StatusResponse {
  version: string;
  uptime_s: number;
  ready: boolean;
  lock_held: boolean;
  /** Absent when the service runs in-process without the daemon's N=1 lock. */
  lock?: LockStatus;
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
