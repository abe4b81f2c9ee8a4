import type {
  BookingRequest,
  CapSet,
  Drift,
  DriftReport,
  LimitChange,
  LimitTable,
  NodeTotals,
  Rejection,
  ReleaseDelta,
  Snapshot,
  SubscriptionTotals,
  VertexKind,
} from './types.js';
import { Vertex, type VertexView } from './vertex.js';

type BookingState = 'in_flight' | 'confirmed' | 'rolled_back' | 'recounted';

/**
 * An applied booking. It holds its vertices directly, so confirm and rollback need no
 * lookups and still settle correctly if the show stops being managed in between.
 */
export class Booking {
  readonly result = 'applied' as const;
  state: BookingState = 'in_flight';

  constructor(
    readonly subscription: Vertex,
    readonly folder: Vertex,
    readonly job: Vertex,
    readonly cores: number,
    readonly gpus: number,
  ) {}
}

export type BookOutcome = Booking | Rejection;

function reject(table: LimitTable, current: number, limit: number): Rejection {
  return { result: 'limit_exceeded', table, current, limit };
}

function assertWholeNonNegative(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} must be a whole number >= 0, got ${value}`);
  }
}

function emptyDrift(): Drift {
  return { cores: 0, gpus: 0, keys: 0 };
}

/**
 * The live accounting state of every enforced pool: one object, and every mutation a
 * synchronous, I/O-free critical section (SPEC §1). Node runs one of these methods at a
 * time, so the check and the increment of `book` can never be split by another booking.
 *
 * Invariant kept by the callers' protocol (see docs/architecture.md):
 *   live = SUM(proc) + bookings whose proc row the last snapshot may not have seen.
 */
export class Store {
  private readonly subscriptions = new Map<string, Map<string, Vertex>>();
  private readonly folders = new Map<string, Vertex>();
  private readonly jobs = new Map<string, Vertex>();
  private currentEpoch = 0;
  private inflight = 0;

  // ---- bookings -------------------------------------------------------------------------

  /**
   * Check the request against every enforced cap and, only if all pass, increment the
   * three vertices and record the delta as in flight. A rejection changes nothing.
   */
  book(request: BookingRequest): BookOutcome {
    const { cores, gpus } = request;
    assertWholeNonNegative('cores', cores);
    assertWholeNonNegative('gpus', gpus);
    const subscription = this.subscriptions.get(request.show)?.get(request.alloc);
    const folder = this.folders.get(request.folder);
    const job = this.jobs.get(request.job);

    if (cores > 0) {
      // An unseeded subscription reads as burst 0: fail closed.
      const current = subscription === undefined ? 0 : subscription.cores;
      const burst = subscription === undefined ? 0 : subscription.maxCores;
      if (current + cores > burst) return reject('subscription', current, burst);
      if (folder !== undefined && folder.maxCores > 0 && folder.cores + cores > folder.maxCores) {
        return reject('folder', folder.cores, folder.maxCores);
      }
      if (job !== undefined && job.maxCores > 0 && job.cores + cores > job.maxCores) {
        return reject('job', job.cores, job.maxCores);
      }
    }
    if (gpus > 0) {
      if (folder !== undefined && folder.maxGpus > 0 && folder.gpus + gpus > folder.maxGpus) {
        return reject('folder_gpus', folder.gpus, folder.maxGpus);
      }
      if (job !== undefined && job.maxGpus > 0 && job.gpus + gpus > job.maxGpus) {
        return reject('job_gpus', job.gpus, job.maxGpus);
      }
    }

    const booking = new Booking(
      subscription ?? this.subscriptionVertex(request.show, request.alloc),
      folder ?? this.nodeVertex(this.folders, 'folder', request.folder, request.show),
      job ?? this.nodeVertex(this.jobs, 'job', request.job, request.show),
      cores,
      gpus,
    );
    this.addLive(booking.subscription, cores, gpus);
    this.addLive(booking.folder, cores, gpus);
    this.addLive(booking.job, cores, gpus);
    this.inflight++;
    return booking;
  }

  /**
   * The proc row committed: move the delta from in flight to the settled bucket of the
   * current epoch. The live counter is unchanged. False if the booking already ended.
   */
  confirm(booking: Booking): boolean {
    if (booking.state !== 'in_flight') return false;
    booking.state = 'confirmed';
    const bucket = (this.currentEpoch & 1) as 0 | 1;
    const { cores, gpus } = booking;
    this.settle(booking.subscription, bucket, cores, gpus);
    this.settle(booking.folder, bucket, cores, gpus);
    this.settle(booking.job, bucket, cores, gpus);
    this.inflight--;
    return true;
  }

  /** The proc insert or launch failed: undo the live increment and the in-flight part. */
  rollback(booking: Booking): boolean {
    if (booking.state !== 'in_flight') return false;
    booking.state = 'rolled_back';
    const { cores, gpus } = booking;
    this.undo(booking.subscription, cores, gpus);
    this.undo(booking.folder, cores, gpus);
    this.undo(booking.job, cores, gpus);
    this.inflight--;
    return true;
  }

  /**
   * A proc was destroyed (negative deltas). Adjusts the live counters of keys the store
   * knows; pending buckets are untouched. Counters never read below zero.
   */
  applyRelease(release: ReleaseDelta): void {
    const subscription = this.subscriptions.get(release.show)?.get(release.alloc);
    if (subscription !== undefined) releaseFrom(subscription, release.cores, release.gpus);
    const folder = this.folders.get(release.folder);
    if (folder !== undefined) releaseFrom(folder, release.cores, release.gpus);
    const job = this.jobs.get(release.job);
    if (job !== undefined) releaseFrom(job, release.cores, release.gpus);
  }

  // ---- recompute ------------------------------------------------------------------------

  /**
   * Start a recompute pass: bump the epoch and return the previous one. Must be called
   * before the `SUM(proc)` snapshot is read, so confirms racing the read land in the new
   * bucket and are carried forward by `overwriteCounters`.
   */
  beginRecompute(): number {
    return this.currentEpoch++;
  }

  /**
   * Overwrite the live counters of every key in the snapshot with
   * `snapshot + in flight + settled since beginRecompute`, then clear the other settled
   * bucket (confirms from before beginRecompute, which the snapshot saw) on every key.
   * Keys missing from the snapshot keep their live value. Returns the drift found.
   */
  overwriteCounters(snapshot: Snapshot, epoch: number): DriftReport {
    this.assertLatestEpoch('overwriteCounters', epoch);
    const carried = (this.currentEpoch & 1) as 0 | 1;
    const report: DriftReport = { subscription: emptyDrift(), folder: emptyDrift(), job: emptyDrift() };
    for (const totals of snapshot.subscriptions) {
      overwrite(this.subscriptionVertex(totals.show, totals.alloc), totals, carried, report.subscription);
    }
    for (const totals of snapshot.folders) {
      overwrite(
        this.nodeVertex(this.folders, 'folder', totals.id, totals.show),
        totals,
        carried,
        report.folder,
      );
    }
    for (const totals of snapshot.jobs) {
      overwrite(this.nodeVertex(this.jobs, 'job', totals.id, totals.show), totals, carried, report.job);
    }
    const seen = (carried ^ 1) as 0 | 1;
    for (const vertex of this.allVertices()) vertex.clearSettled(seen);
    return report;
  }

  /**
   * Set the live counters of the keys in the snapshot (a newly managed show, the bootstrap)
   * exactly as a recompute overwrites them: `snapshot + in flight + settled since
   * beginRecompute`. The caller calls `beginRecompute()` before reading the snapshot and
   * passes its epoch: a booking of the show still in flight (the show flipped away and back
   * within one lease) that is confirmed while the snapshot is read lands in the new bucket and
   * is carried, never erased. Seeds and recomputes must be single-flight together (the epoch
   * check refuses an interleaving). Only the seeded keys drop their older bucket (their
   * snapshot saw it); other keys keep it until the next recompute clears it, an over-count
   * of at most one more pass.
   */
  seedShowBooked(snapshot: Snapshot, epoch: number): void {
    this.assertLatestEpoch('seedShowBooked', epoch);
    const carried = (this.currentEpoch & 1) as 0 | 1;
    const seen = (carried ^ 1) as 0 | 1;
    const ignored = emptyDrift();
    const seedOne = (vertex: Vertex, totals: SubscriptionTotals | NodeTotals): void => {
      overwrite(vertex, totals, carried, ignored);
      vertex.clearSettled(seen);
    };
    for (const totals of snapshot.subscriptions) {
      seedOne(this.subscriptionVertex(totals.show, totals.alloc), totals);
    }
    for (const totals of snapshot.folders)
      seedOne(this.nodeVertex(this.folders, 'folder', totals.id, totals.show), totals);
    for (const totals of snapshot.jobs)
      seedOne(this.nodeVertex(this.jobs, 'job', totals.id, totals.show), totals);
  }

  /**
   * A confirm that arrived after its lease expired: the client broke the protocol, and its
   * proc may have been committed after a recompute already dropped the expired booking. Count
   * the booking again as a confirm landing now: live += delta, settled in the current bucket,
   * so the next overwrite carries it if its snapshot misses the proc. When a snapshot already
   * saw the proc this is an over-count, healed by the next-but-one recompute; it is never an
   * under-count. Only a booking settled by expiry (state `confirmed`), and only once.
   */
  recountLate(booking: Booking): boolean {
    if (booking.state !== 'confirmed') return false;
    booking.state = 'recounted';
    const bucket = (this.currentEpoch & 1) as 0 | 1;
    const { cores, gpus } = booking;
    for (const vertex of [booking.subscription, booking.folder, booking.job]) {
      vertex.cores += cores;
      vertex.gpus += gpus;
      vertex.addSettled(bucket, cores, gpus);
    }
    return true;
  }

  // ---- caps -----------------------------------------------------------------------------

  /**
   * Set caps from the database. With `onlyUnseeded`, only vertices whose caps never came
   * from the database are touched (new jobs seen by a recompute between reseeds).
   * `authoritativeShows`: the cap set lists every subscription of these shows, so one of
   * theirs that is missing has lost its row and fails closed (burst 0).
   */
  setCaps(
    caps: CapSet,
    options: { onlyUnseeded?: boolean; authoritativeShows?: ReadonlySet<string> } = {},
  ): void {
    const onlyUnseeded = options.onlyUnseeded === true;
    const listed = new Set<Vertex>();
    for (const cap of caps.subscriptions) {
      const vertex = this.subscriptionVertex(cap.show, cap.alloc);
      listed.add(vertex);
      if (onlyUnseeded && vertex.capsSeeded) continue;
      vertex.maxCores = cap.burst;
      vertex.capsSeeded = true;
    }
    for (const cap of caps.folders)
      this.setNodeCap(this.nodeVertex(this.folders, 'folder', cap.id, cap.show), cap, onlyUnseeded);
    for (const cap of caps.jobs)
      this.setNodeCap(this.nodeVertex(this.jobs, 'job', cap.id, cap.show), cap, onlyUnseeded);
    const shows = options.authoritativeShows;
    if (shows === undefined) return;
    for (const [show, byAlloc] of this.subscriptions) {
      if (!shows.has(show)) continue;
      for (const vertex of byAlloc.values()) if (!listed.has(vertex)) vertex.maxCores = 0;
    }
  }

  /**
   * One cap change from the feed. A field never seen before stays unlimited (-1) for
   * folders and jobs, never 0; a subscription's burst is the only cap it has.
   */
  applyLimitChange(change: LimitChange): void {
    if (change.vertex === 'sub') {
      this.subscriptionVertex(change.show, change.alloc).maxCores = change.burst;
      return;
    }
    const vertex =
      change.vertex === 'folder'
        ? this.nodeVertex(this.folders, 'folder', change.id, undefined)
        : this.nodeVertex(this.jobs, 'job', change.id, undefined);
    if (change.field === 'max_cores') vertex.maxCores = change.value;
    else vertex.maxGpus = change.value;
  }

  // ---- reads ----------------------------------------------------------------------------

  get epoch(): number {
    return this.currentEpoch;
  }

  /** Applied bookings not yet confirmed or rolled back. */
  get inflightCount(): number {
    return this.inflight;
  }

  subscription(show: string, alloc: string): VertexView | undefined {
    return this.subscriptions.get(show)?.get(alloc);
  }

  folder(id: string): VertexView | undefined {
    return this.folders.get(id);
  }

  job(id: string): VertexView | undefined {
    return this.jobs.get(id);
  }

  /** Every vertex of one kind, in insertion order. */
  *vertices(kind: VertexKind): IterableIterator<VertexView> {
    if (kind === 'subscription') {
      for (const byAlloc of this.subscriptions.values()) yield* byAlloc.values();
    } else {
      yield* (kind === 'folder' ? this.folders : this.jobs).values();
    }
  }

  count(kind: VertexKind): number {
    if (kind === 'folder') return this.folders.size;
    if (kind === 'job') return this.jobs.size;
    let total = 0;
    for (const byAlloc of this.subscriptions.values()) total += byAlloc.size;
    return total;
  }

  // ---- internals ------------------------------------------------------------------------

  private assertLatestEpoch(caller: string, epoch: number): void {
    if (epoch !== this.currentEpoch - 1) {
      // Two passes interleaved would clear a bucket that still holds unseen confirms.
      throw new Error(
        `${caller}: epoch ${epoch} is not the one the last beginRecompute returned (${this.currentEpoch - 1})`,
      );
    }
  }

  private *allVertices(): IterableIterator<Vertex> {
    for (const byAlloc of this.subscriptions.values()) yield* byAlloc.values();
    yield* this.folders.values();
    yield* this.jobs.values();
  }

  private subscriptionVertex(show: string, alloc: string): Vertex {
    let byAlloc = this.subscriptions.get(show);
    if (byAlloc === undefined) {
      byAlloc = new Map();
      this.subscriptions.set(show, byAlloc);
    }
    let vertex = byAlloc.get(alloc);
    if (vertex === undefined) {
      vertex = new Vertex('subscription', alloc, show);
      byAlloc.set(alloc, vertex);
    }
    return vertex;
  }

  private nodeVertex(
    map: Map<string, Vertex>,
    kind: 'folder' | 'job',
    id: string,
    show: string | undefined,
  ): Vertex {
    let vertex = map.get(id);
    if (vertex === undefined) {
      vertex = new Vertex(kind, id, show);
      map.set(id, vertex);
    } else if (vertex.show === undefined) {
      vertex.show = show;
    }
    return vertex;
  }

  private setNodeCap(
    vertex: Vertex,
    cap: { maxCores: number; maxGpus: number },
    onlyUnseeded: boolean,
  ): void {
    if (onlyUnseeded && vertex.capsSeeded) return;
    vertex.maxCores = cap.maxCores;
    vertex.maxGpus = cap.maxGpus;
    vertex.capsSeeded = true;
  }

  private addLive(vertex: Vertex, cores: number, gpus: number): void {
    vertex.cores += cores;
    vertex.gpus += gpus;
    vertex.inflightCores += cores;
    vertex.inflightGpus += gpus;
  }

  private settle(vertex: Vertex, bucket: 0 | 1, cores: number, gpus: number): void {
    vertex.inflightCores -= cores;
    vertex.inflightGpus -= gpus;
    vertex.addSettled(bucket, cores, gpus);
  }

  private undo(vertex: Vertex, cores: number, gpus: number): void {
    // Clamped like a release: only a double-counted release can have pushed live below it.
    vertex.cores = Math.max(0, vertex.cores - cores);
    vertex.gpus = Math.max(0, vertex.gpus - gpus);
    vertex.inflightCores -= cores;
    vertex.inflightGpus -= gpus;
  }
}

function releaseFrom(vertex: Vertex, cores: number, gpus: number): void {
  vertex.cores = Math.max(0, vertex.cores + cores);
  vertex.gpus = Math.max(0, vertex.gpus + gpus);
}

function overwrite(
  vertex: Vertex,
  totals: SubscriptionTotals | NodeTotals,
  carried: 0 | 1,
  drift: Drift,
): void {
  const cores = totals.cores + vertex.inflightCores + vertex.settledCores(carried);
  const gpus = totals.gpus + vertex.inflightGpus + vertex.settledGpus(carried);
  if (cores !== vertex.cores || gpus !== vertex.gpus) {
    drift.cores += Math.abs(vertex.cores - cores);
    drift.gpus += Math.abs(vertex.gpus - gpus);
    drift.keys++;
  }
  vertex.cores = cores;
  vertex.gpus = gpus;
}
