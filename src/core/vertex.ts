import type { LimitTable, VertexKind } from './types.js';

/** Cap value meaning "no limit" for folder/job caps. */
export const UNLIMITED = -1;

/**
 * One enforced pool's live counters, pending parts and caps.
 *
 * Fields are plain numbers (no arrays, no maps) so the hot path stays monomorphic and
 * allocation-free. The two settled buckets are selected by epoch parity: see Store.
 */
export class Vertex {
  /** Live booked counters: what enforcement compares against the caps. */
  cores = 0;
  gpus = 0;
  /** Applied bookings not yet confirmed or rolled back. */
  inflightCores = 0;
  inflightGpus = 0;
  /** Confirmed bookings, by epoch parity, that a snapshot may not have seen yet. */
  settledCores0 = 0;
  settledCores1 = 0;
  settledGpus0 = 0;
  settledGpus1 = 0;
  /** Subscription: burst (0 = reject all). Folder/job: max cores (<= 0 = unlimited). */
  maxCores: number;
  /** Folder/job: max GPUs (<= 0 = unlimited). Unused for subscriptions. */
  maxGpus = UNLIMITED;
  /** True once caps came from the database (not just from a booking or a one-field change). */
  capsSeeded = false;
  /**
   * A job's folder vertex: where the store holds this job's usage. Bookings and releases of
   * the job charge it, whatever folder they name; `Store.moveJob` re-points it.
   */
  parentFolder: Vertex | undefined = undefined;
  /** A folder: how many of the store's jobs have it as `parentFolder` (it is kept while any does). */
  heldJobs = 0;
  /**
   * Bookings this vertex's cap refused since the daemon started, never reset: the core cap
   * (table subscription, folder or job by kind) and the GPU cap (folder_gpus, job_gpus).
   * Plain counters, so `book` pays one increment; rates are computed outside the core.
   */
  refusedCores = 0;
  refusedGpus = 0;

  constructor(
    readonly kind: VertexKind,
    /** Folder or job id; the alloc id for a subscription. */
    readonly id: string,
    /** Owning show; undefined for a folder/job only ever seen in a limit change. */
    public show: string | undefined,
  ) {
    this.maxCores = kind === 'subscription' ? 0 : UNLIMITED;
  }

  /** For a subscription, `id` is the alloc. */
  get alloc(): string | undefined {
    return this.kind === 'subscription' ? this.id : undefined;
  }

  /** A job's folder id, when known. */
  get folderId(): string | undefined {
    return this.parentFolder?.id;
  }

  /** Nothing in flight and nothing settled that a snapshot may not have seen. */
  get idle(): boolean {
    return (
      this.inflightCores === 0 &&
      this.inflightGpus === 0 &&
      this.settledCores0 === 0 &&
      this.settledCores1 === 0 &&
      this.settledGpus0 === 0 &&
      this.settledGpus1 === 0
    );
  }

  settledCores(bucket: 0 | 1): number {
    return bucket === 0 ? this.settledCores0 : this.settledCores1;
  }

  settledGpus(bucket: 0 | 1): number {
    return bucket === 0 ? this.settledGpus0 : this.settledGpus1;
  }

  addSettled(bucket: 0 | 1, cores: number, gpus: number): void {
    if (bucket === 0) {
      this.settledCores0 += cores;
      this.settledGpus0 += gpus;
    } else {
      this.settledCores1 += cores;
      this.settledGpus1 += gpus;
    }
  }

  clearSettled(bucket: 0 | 1): void {
    if (bucket === 0) {
      this.settledCores0 = 0;
      this.settledGpus0 = 0;
    } else {
      this.settledCores1 = 0;
      this.settledGpus1 = 0;
    }
  }
}

/** Read-only view of a vertex for status pages, the TUI and tests. */
export type VertexView = Readonly<
  Pick<
    Vertex,
    | 'kind'
    | 'id'
    | 'show'
    | 'alloc'
    | 'cores'
    | 'gpus'
    | 'inflightCores'
    | 'inflightGpus'
    | 'maxCores'
    | 'maxGpus'
    | 'capsSeeded'
    | 'folderId'
    | 'refusedCores'
    | 'refusedGpus'
    | 'settledCores'
    | 'settledGpus'
  >
>;

type CapView = Pick<VertexView, 'kind' | 'cores' | 'gpus' | 'maxCores' | 'maxGpus'>;

/** Cores against the burst for a subscription; the fuller of cores and GPUs for folder/job; null when unlimited. */
export function utilization(vertex: CapView): number | null {
  if (vertex.kind === 'subscription') return vertex.maxCores > 0 ? vertex.cores / vertex.maxCores : null;
  const shares: number[] = [];
  if (vertex.maxCores > 0) shares.push(vertex.cores / vertex.maxCores);
  if (vertex.maxGpus > 0) shares.push(vertex.gpus / vertex.maxGpus);
  return shares.length === 0 ? null : Math.max(...shares);
}

/** Live usage above an enforced cap: possible only after a cap decrease (SPEC §1). */
export function isOverCap(vertex: CapView): boolean {
  if (vertex.kind === 'subscription') return vertex.cores > vertex.maxCores;
  return (
    (vertex.maxCores > 0 && vertex.cores > vertex.maxCores) ||
    (vertex.maxGpus > 0 && vertex.gpus > vertex.maxGpus)
  );
}

/** The cap tables a vertex of this kind can refuse on: its core table, then its GPU table. */
export function refusalTables(kind: VertexKind): readonly [LimitTable] | readonly [LimitTable, LimitTable] {
  if (kind === 'subscription') return ['subscription'];
  return kind === 'folder' ? ['folder', 'folder_gpus'] : ['job', 'job_gpus'];
}

/** A vertex's refusals per table (only the tables it has). */
export function refusalsByTable(
  vertex: Pick<VertexView, 'kind' | 'refusedCores' | 'refusedGpus'>,
): Partial<Record<LimitTable, number>> {
  const [cores, gpus] = refusalTables(vertex.kind);
  return gpus === undefined
    ? { [cores]: vertex.refusedCores }
    : { [cores]: vertex.refusedCores, [gpus]: vertex.refusedGpus };
}
