/** The three enforced accounting pools kept in memory (SPEC §1). */
export type VertexKind = 'subscription' | 'folder' | 'job';
export const VERTEX_KINDS: readonly VertexKind[] = ['subscription', 'folder', 'job'];

/** Which cap a rejected booking ran into. */
export type LimitTable = 'subscription' | 'folder' | 'job' | 'folder_gpus' | 'job_gpus';

/** The keys of the three vertices a proc counts against: (show, alloc), folder, job. */
export interface VertexKeys {
  show: string;
  /** The allocation of the proc's host. */
  alloc: string;
  folder: string;
  job: string;
}

/** One booking: a slice of a host given to one frame, in whole cores and GPUs (>= 0). */
export interface BookingRequest extends VertexKeys, Totals {}

export interface Rejection {
  readonly result: 'limit_exceeded';
  readonly table: LimitTable;
  readonly current: number;
  readonly limit: number;
}

/** A release from the database feed: negative deltas (SPEC §2 `acct_release`). */
export interface ReleaseDelta extends VertexKeys, Totals {}

/** Booked totals of one vertex in whole cores and GPUs. */
export interface Totals {
  cores: number;
  gpus: number;
}

export interface SubscriptionTotals extends Totals {
  show: string;
  alloc: string;
}

export interface NodeTotals extends Totals {
  id: string;
  show: string;
  /** For a job: the folder its procs were summed under in this snapshot. */
  folder?: string;
}

/** Booked counters read from `SUM(proc)`, in whole cores, one entry per key. */
export interface Snapshot {
  subscriptions: SubscriptionTotals[];
  folders: NodeTotals[];
  jobs: NodeTotals[];
}

export interface SubscriptionCap {
  show: string;
  alloc: string;
  /** Whole cores; 0 rejects everything. */
  burst: number;
}

export interface NodeCap {
  id: string;
  show: string;
  /** Whole cores; <= 0 is unlimited. */
  maxCores: number;
  /** <= 0 is unlimited. */
  maxGpus: number;
  /** For a job: its folder, as read with its caps. */
  folder?: string;
}

/** The enforced caps, in whole cores. */
export interface CapSet {
  subscriptions: SubscriptionCap[];
  folders: NodeCap[];
  jobs: NodeCap[];
}

/** A single-field cap change, as the `acct_limit_change` feed delivers it. */
export type LimitField = 'max_cores' | 'max_gpus';
export type LimitChange =
  | { vertex: 'sub'; show: string; alloc: string; burst: number }
  | { vertex: 'folder' | 'job'; id: string; field: LimitField; value: number };

/** How far the store was from `SUM(proc) + carried` before an overwrite, per vertex kind. */
export interface Drift {
  /** Sum over keys of |live - expected| cores. */
  cores: number;
  /** Sum over keys of |live - expected| GPUs. */
  gpus: number;
  /** Keys whose live counter differed. */
  keys: number;
}

export type DriftReport = Record<VertexKind, Drift>;
