/**
 * What a simulation run is asked to do, and what it reports. Every time is absolute
 * milliseconds since the Unix epoch (see clock.ts). Cores are whole cores, GPUs whole units,
 * as on the booking API; the database's centicores stay inside the simulator.
 */
import type { Sql } from 'postgres';
import type { BookingRequest, LimitTable, VertexKind } from '../core/types.js';
import type { LatencySummary } from './stats.js';

export interface SimulationOptions {
  /** The daemon: `http://host:port` or `unix:/path`. */
  daemonUrl: string;
  /** Bearer token of the daemon, if it needs one. */
  token?: string;
  /** The farm's database: a URL (the simulator opens and closes its own small pool)… */
  databaseUrl?: string;
  /** …or a pool of the caller's (left open). */
  sql?: Sql;
  /**
   * Stops by itself after this long (required). `Infinity` runs until `signal` aborts (a demo
   * load for as long as the daemon runs); it needs a signal and `record: false`.
   */
  durationMs: number;
  /** Stops early, cleanly, when aborted. */
  signal?: AbortSignal;
  /**
   * Keep every booking, rejection, release and cap change for an audit (default true). A long
   * demo run sets false: the report then has counts and latencies but empty record lists.
   */
  record?: boolean;
  /** Also stop after this many applied bookings. */
  maxBookings?: number;
  /** Centicores per core in the database (default 100). */
  coreMultiplier?: number;
  /** Book only for these shows (ids); default every active show with a subscription on an alloc with hosts. */
  shows?: readonly string[];
  /** Booking loops; shows are split between them so that no vertex is shared (default 1). */
  workers?: number;
  /** Target bookings per second over all workers; 0 = as fast as the loop goes (default 200). */
  rate?: number;
  /** Bookings per request: 1 uses `POST /v1/book`, more uses `POST /v1/batch` (default 10). */
  batchSize?: number;
  /** Cores per booking, uniform in [min, max] (default [1, 4]). */
  cores?: readonly [number, number];
  /** Share of bookings that also ask for GPUs (default 0.1). */
  gpuShare?: number;
  /** GPUs of such a booking, uniform in [min, max] (default [1, 2]). */
  gpus?: readonly [number, number];
  /** Share of applied bookings whose proc insert "fails": rolled back (default 0.05). */
  rollbackShare?: number;
  /**
   * Share of applied bookings the scheduler "dies" on: never confirmed nor rolled back, left
   * to the lease (default 0). Half of them die after the proc insert, half before.
   */
  abandonShare?: number;
  /** Simulated Cuebot: procs released per second (default: same as `rate`; 0 = none). */
  releaseRate?: number;
  /** Procs per release transaction, one job at most once per transaction (default 5). */
  releaseBatch?: number;
  /** Only procs at least this old are released (default 0). */
  releaseMinAgeMs?: number;
  /** Release fixture procs that existed before the run too (default true). */
  releaseExisting?: boolean;
  /**
   * Share of release transactions that DELETE without `acct_release` (a lost notification;
   * the daemon reads high until its next recompute). Default 0.
   */
  silentReleaseShare?: number;
  /** Cap changes per second with `acct_limit_change` (default 0.2; 0 = none). */
  capChangeRate?: number;
  /** A changed cap is its original value times a factor uniform in [min, max] (default [0.5, 1.5]). */
  capChangeFactor?: readonly [number, number];
  /** Seed of the pseudo-random choices (default: random). */
  seed?: number;
  /** Called about once a second with running totals. */
  onProgress?: (progress: SimulationProgress) => void;
  /** Per-request timeout against the daemon (default 10 s). */
  requestTimeoutMs?: number;
}

/** One enforced vertex, keyed as `GET /v1/state` keys it (`show/alloc` for a subscription). */
export interface VertexRef {
  kind: VertexKind;
  key: string;
}

/** One booking as the simulated scheduler asks for it: the booking API's request. */
export type BookingTarget = BookingRequest;

export type BookingFate =
  /** Proc inserted, then confirmed (or the confirm found the lease already expired). */
  | 'confirmed'
  /** No proc; rolled back. */
  | 'rolled_back'
  /** The scheduler "died": left to lease expiry. */
  | 'abandoned'
  /** Still being worked on when the report was built (should not happen). */
  | 'pending';

/** An applied booking, as the simulated scheduler saw it. */
export interface BookingRecord extends BookingTarget {
  /** The daemon's booking id. */
  id: string;
  worker: number;
  /** Orders the operations of one worker (and so of every vertex it books). */
  seq: number;
  requestedAt: number;
  appliedAt: number;
  leaseExpiresAt: number;
  /** The proc row inserted for it, if any. */
  proc: string | null;
  /** When the proc insert was not known to have committed or not (database down). */
  procUnknown?: boolean;
  fate: BookingFate;
  /** Time of the settle answer (rollback / confirm); null for abandoned or pending. */
  settledAt: number | null;
  /** What the daemon answered to the settle: confirmed, rolled_back, lease_expired, unknown_booking, or an error. */
  settleAnswer: string | null;
}

/** A booking the daemon refused with 409 limit_exceeded. */
export interface RejectionRecord extends BookingTarget {
  worker: number;
  seq: number;
  requestedAt: number;
  answeredAt: number;
  table: LimitTable;
  current: number;
  limit: number;
}

/** One proc deleted by the simulated Cuebot, with the cores and GPUs it held (positive). */
export interface ReleaseRecord extends BookingRequest {
  proc: string;
  /** Whether `acct_release` was sent (managed show, and not a deliberately silent release). */
  notified: boolean;
  startedAt: number;
  /** When the transaction's COMMIT was acknowledged. */
  committedAt: number;
}

/** One cap change (with `acct_limit_change` when the show is managed). */
export interface CapChangeRecord {
  vertex: VertexRef;
  field: 'max_cores' | 'max_gpus';
  /** Whole cores (GPUs for max_gpus); for folder/job <= 0 means unlimited. */
  from: number;
  to: number;
  startedAt: number;
  committedAt: number;
}

export interface VertexCaps {
  maxCores: number;
  maxGpus: number;
}

export interface VertexUsage {
  cores: number;
  gpus: number;
}

/** The farm as read from the database just before the load started. */
export interface InitialState {
  at: number;
  /** SUM(proc) per vertex, every show (managed or not), in whole cores. */
  usage: Record<string, VertexUsage>;
  /** Caps per vertex key (`kind:key`): burst for subscriptions (maxGpus -1), max_cores/max_gpus for folders/jobs. */
  caps: Record<string, VertexCaps>;
  /** Show id -> managed at that time. */
  managed: Record<string, boolean>;
}

export interface SimulationCounts {
  /** Booking requests sent (single or inside a batch). */
  requested: number;
  applied: number;
  rejected: number;
  rejectedBy: Partial<Record<LimitTable, number>>;
  notManaged: number;
  /** 503 not_ready answers (the daemon failed closed). */
  notReady: number;
  confirmed: number;
  rolledBack: number;
  abandoned: number;
  /** Settles answered lease_expired (the scheduler was slower than the lease). */
  settleLeaseExpired: number;
  /** Settles answered unknown_booking. */
  settleUnknown: number;
  procsInserted: number;
  procInsertFailures: number;
  released: number;
  releasedSilently: number;
  releaseFailures: number;
  capChanges: number;
  capChangeFailures: number;
  /** Requests that got no answer (refused, reset, timeout); their bookings' outcome is unknown. */
  transportErrors: number;
  /** Booking requests lost that way (each may or may not have been applied). */
  lostBookRequests: number;
  /** Other unexpected answers (4xx/5xx that are not part of the protocol). */
  unexpected: number;
}

export interface SimulationProgress {
  elapsedMs: number;
  counts: SimulationCounts;
}

export interface SimulationReport {
  startedAt: number;
  endedAt: number;
  /** Why the run ended. */
  stoppedBy: 'duration' | 'signal' | 'max_bookings';
  seed: number;
  options: Omit<SimulationOptions, 'sql' | 'signal' | 'onProgress' | 'token'>;
  initial: InitialState;
  counts: SimulationCounts;
  /** Every applied booking, in the order the daemon applied them per worker (time-ordered). */
  bookings: BookingRecord[];
  rejections: RejectionRecord[];
  releases: ReleaseRecord[];
  capChanges: CapChangeRecord[];
  /** Times at which a 503 not_ready answer arrived (the daemon failed closed). */
  notReadyAt: number[];
  latency: {
    /** One booking request round trip (`/v1/book` or a whole `/v1/batch`). */
    book: LatencySummary;
    /** The settle batch (confirms and rollbacks). */
    settle: LatencySummary;
    /** The proc INSERT. */
    insert: LatencySummary;
    /** Book request sent -> confirm answered, per confirmed booking (end to end). */
    endToEnd: LatencySummary;
    release: LatencySummary;
  };
  /** Confirmed bookings per second of the run (book -> INSERT proc -> confirm, end to end). */
  bookingsPerSecond: number;
  /** The first few unexpected errors, for the log. */
  errors: string[];
}

/** `kind:key` */
export function vertexId(kind: VertexKind, key: string): string {
  return `${kind}:${key}`;
}

export function subscriptionKey(show: string, alloc: string): string {
  return `${show}/${alloc}`;
}
