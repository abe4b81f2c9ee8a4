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
import { MAX_BOOKING_CORES, MAX_BOOKING_GPUS } from './booking-range.js';
import { runToEnd, type Steps } from './steps.js';

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
    private readonly bookedFolder: Vertex,
    readonly job: Vertex,
    readonly cores: number,
    readonly gpus: number,
  ) {}

  /** The job's folder now: a job moved while this booking was in flight settles in its new folder. */
  get folder(): Vertex {
    return this.job.parentFolder ?? this.bookedFolder;
  }
}

export type BookOutcome = Booking | Rejection;

function reject(table: LimitTable, current: number, limit: number): Rejection {
  return { result: 'limit_exceeded', table, current, limit };
}

function assertBookingAmount(name: string, value: number, max: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be a whole number from 0 to ${max}`);
  }
}

/** `value - amount`, never below 0: a defensive floor where a subtraction could undershoot. */
function minus(value: number, amount: number): number {
  return value > amount ? value - amount : 0;
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
  private removedVertices = 0;
  /** A sliced overwrite is between its first and last step. */
  private overwriting = false;

  // ---- bookings -------------------------------------------------------------------------

  /**
   * Check the request against every enforced cap and, only if all pass, increment the
   * three vertices and record the delta as in flight. A rejection changes nothing.
   */
  book(request: BookingRequest): BookOutcome {
    const subscription = this.subscriptions.get(request.show)?.get(request.alloc);
    const job = this.jobs.get(request.job);
    // A job's usage lives in the folder the store holds it under (the service rejects a
    // request naming another one before it gets here).
    const folder = job?.parentFolder ?? this.folders.get(request.folder);
    return this.checkAndApply(request, subscription, folder, job);
  }

  /**
   * `book`, only when the store holds database caps for all three keys and the job's show and
   * folder are the ones the request names; undefined (nothing checked, nothing changed)
   * otherwise. The service's fast path: one lookup per key, no allocation.
   */
  bookIfKnown(request: BookingRequest): BookOutcome | undefined {
    const job = this.jobs.get(request.job);
    if (job === undefined || !job.capsSeeded || job.show !== request.show) return undefined;
    const folder = job.parentFolder;
    if (folder === undefined || folder.id !== request.folder || !folder.capsSeeded) return undefined;
    const subscription = this.subscriptions.get(request.show)?.get(request.alloc);
    if (subscription === undefined || !subscription.capsSeeded) return undefined;
    return this.checkAndApply(request, subscription, folder, job);
  }

  private checkAndApply(
    request: BookingRequest,
    subscription: Vertex | undefined,
    folder: Vertex | undefined,
    job: Vertex | undefined,
  ): BookOutcome {
    const { cores, gpus } = request;
    assertBookingAmount('cores', cores, MAX_BOOKING_CORES);
    assertBookingAmount('gpus', gpus, MAX_BOOKING_GPUS);

    if (cores > 0) {
      // An unseeded subscription reads as burst 0: fail closed.
      const current = subscription === undefined ? 0 : subscription.cores;
      const burst = subscription === undefined ? 0 : subscription.maxCores;
      // Each refusal is counted on the vertex whose cap refused (an unknown subscription has
      // no vertex to count on: only the service's global counter sees it).
      if (current + cores > burst) {
        if (subscription !== undefined) subscription.refusedCores++;
        return reject('subscription', current, burst);
      }
      if (folder !== undefined && folder.maxCores > 0 && folder.cores + cores > folder.maxCores) {
        folder.refusedCores++;
        return reject('folder', folder.cores, folder.maxCores);
      }
      if (job !== undefined && job.maxCores > 0 && job.cores + cores > job.maxCores) {
        job.refusedCores++;
        return reject('job', job.cores, job.maxCores);
      }
    }
    if (gpus > 0) {
      if (folder !== undefined && folder.maxGpus > 0 && folder.gpus + gpus > folder.maxGpus) {
        folder.refusedGpus++;
        return reject('folder_gpus', folder.gpus, folder.maxGpus);
      }
      if (job !== undefined && job.maxGpus > 0 && job.gpus + gpus > job.maxGpus) {
        job.refusedGpus++;
        return reject('job_gpus', job.gpus, job.maxGpus);
      }
    }

    const folderVertex = folder ?? this.nodeVertex(this.folders, 'folder', request.folder, request.show);
    const jobVertex = job ?? this.nodeVertex(this.jobs, 'job', request.job, request.show);
    if (jobVertex.parentFolder === undefined) holdUnder(jobVertex, folderVertex);
    const booking = new Booking(
      subscription ?? this.subscriptionVertex(request.show, request.alloc),
      folderVertex,
      jobVertex,
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
    const job = this.jobs.get(release.job);
    // The folder the store holds the job's usage under, even if the job has moved since.
    const folder = job?.parentFolder ?? this.folders.get(release.folder);
    if (folder !== undefined) releaseFrom(folder, release.cores, release.gpus);
    if (job !== undefined) releaseFrom(job, release.cores, release.gpus);
  }

  // ---- recompute ------------------------------------------------------------------------

  /**
   * Start a recompute pass: bump the epoch and return the previous one. Must be called
   * before the `SUM(proc)` snapshot is read, so confirms racing the read land in the new
   * bucket and are carried forward by `overwriteCounters`.
   */
  beginRecompute(): number {
    this.assertNoOverwrite('beginRecompute');
    return this.currentEpoch++;
  }

  /**
   * Overwrite the live counters of every key in the snapshot with
   * `snapshot + in flight + settled since beginRecompute`, then clear the other settled
   * bucket (confirms from before beginRecompute, which the snapshot saw) on every key.
   * Keys missing from the snapshot keep their live value. Returns the drift found.
   */
  overwriteCounters(snapshot: Snapshot, epoch: number): DriftReport {
    return runToEnd(this.beginOverwrite(snapshot, epoch));
  }

  /**
   * `overwriteCounters` one vertex per step, so bookings never wait behind a whole farm: the
   * caller runs the steps to the end, letting other work run between them.
   *
   * Each vertex's overwrite is one critical section, and what may run between two of them
   * keeps the invariant: a booking, confirm or rollback changes live and its pending parts
   * by the same delta, so `snapshot + pending` stays right on either side of the overwrite;
   * a release applied before the overwrite is erased by it (an over-count, healed by the
   * next pass, as when it lands during the fence) and one applied after it is exact. What
   * must not run in between is refused until the last step: a new epoch (another pass) and
   * a job moving folder (the folders' part of the snapshot would follow it twice).
   */
  beginOverwrite(snapshot: Snapshot, epoch: number): Steps<DriftReport> {
    this.assertLatestEpoch('overwriteCounters', epoch);
    this.assertNoOverwrite('overwriteCounters');
    this.overwriting = true;
    return this.overwriteSteps(snapshot);
  }

  /** One yield per vertex overwritten or cleared, and per key checked for forgetting. */
  private *overwriteSteps(snapshot: Snapshot): Steps<DriftReport> {
    try {
      return yield* this.overwriteEach(snapshot);
    } finally {
      // Also when a step throws (a bug): it must not leave every later pass refused.
      this.overwriting = false;
    }
  }

  private *overwriteEach(snapshot: Snapshot): Steps<DriftReport> {
    const report: DriftReport = { subscription: emptyDrift(), folder: emptyDrift(), job: emptyDrift() };
    const carried = (this.currentEpoch & 1) as 0 | 1;
    const present = new Set<Vertex>();
    for (const totals of snapshot.subscriptions) {
      overwrite(this.subscriptionVertex(totals.show, totals.alloc), totals, carried, report.subscription);
      yield;
    }
    for (const totals of snapshot.folders) {
      const vertex = this.nodeVertex(this.folders, 'folder', totals.id, totals.show);
      overwrite(vertex, totals, carried, report.folder);
      present.add(vertex);
      yield;
    }
    // After every folder: a job summed under a folder it has left shifts that part of the
    // folders' overwritten values (bookings in between only add their own deltas).
    for (const totals of snapshot.jobs) {
      const vertex = this.nodeVertex(this.jobs, 'job', totals.id, totals.show);
      overwrite(vertex, totals, carried, report.job);
      present.add(vertex);
      if (totals.folder !== undefined) this.followSnapshotFolder(vertex, totals.folder, totals);
      yield;
    }
    // Only confirms from before the epoch bump are in this bucket, and none can join it now.
    const seen = (carried ^ 1) as 0 | 1;
    for (const vertex of this.allVertices()) {
      vertex.clearSettled(seen);
      yield;
    }
    yield* this.forgetIdle(present);
    return report;
  }

  /**
   * The snapshot summed a job's procs under `folder`; the store holds the job under another
   * one (it moved after the read: a booking re-resolved it). Shift that part of the snapshot to
   * where the job is now, so neither folder keeps a sum it no longer (or not yet) holds.
   */
  private followSnapshotFolder(job: Vertex, folder: string, totals: NodeTotals): void {
    const summedUnder = this.nodeVertex(this.folders, 'folder', folder, totals.show);
    if (job.parentFolder === undefined) {
      holdUnder(job, summedUnder);
      return;
    }
    if (job.parentFolder === summedUnder) return;
    releaseFrom(summedUnder, -totals.cores, -totals.gpus);
    job.parentFolder.cores += totals.cores;
    job.parentFolder.gpus += totals.gpus;
  }

  /**
   * Forget folders and jobs that left the snapshot (out of the cap set, no procs) and hold
   * nothing a snapshot may not have seen: their true usage is 0 and no booking refers to them.
   * One key per step. A folder still holding a job is kept (`heldJobs`, counted as jobs come,
   * move and go, so each check is one step). Subscriptions stay (few; a deleted one fails closed).
   */
  private *forgetIdle(present: ReadonlySet<Vertex>): Steps<void> {
    for (const [id, job] of this.jobs) {
      if (!present.has(job) && job.idle) {
        holdUnder(job, undefined);
        this.jobs.delete(id);
        this.removedVertices++;
      }
      yield;
    }
    for (const [id, folder] of this.folders) {
      if (!present.has(folder) && folder.idle && folder.heldJobs === 0) {
        this.folders.delete(id);
        this.removedVertices++;
      }
      yield;
    }
  }

  /**
   * A job moved to another folder (read from the database): move its usage — live, in flight
   * and settled — from the folder the store held it under to the new one, in one step. False
   * when the job is unknown or already there. Counters never go below 0.
   */
  moveJob(job: string, folder: string): boolean {
    this.assertNoOverwrite('moveJob');
    const vertex = this.jobs.get(job);
    if (vertex === undefined) return false;
    const to = this.nodeVertex(this.folders, 'folder', folder, vertex.show);
    const from = vertex.parentFolder;
    if (from === to) return false;
    holdUnder(vertex, to);
    if (from !== undefined) shiftUsage(vertex, from, -1);
    shiftUsage(vertex, to, 1);
    return true;
  }

  /**
   * Set the live counters of the keys in the snapshot (a newly managed show, the bootstrap)
   * exactly as a recompute overwrites them: `snapshot + in flight + settled since
   * beginRecompute`. The caller calls `beginRecompute()` before reading the snapshot and
   * passes its epoch: a booking of the show still in flight (the show flipped away and back
   * within one lease) that is confirmed while the snapshot is read lands in the new bucket and
   * is carried, never erased. Seeds and recomputes must be single-flight together (the epoch
   * check refuses an interleaving). The seeded keys drop their older bucket (their snapshot saw
   * it); every other key moves it into the new bucket, which the next recompute clears.
   */
  seedShowBooked(snapshot: Snapshot, epoch: number): void {
    this.assertLatestEpoch('seedShowBooked', epoch);
    const carried = (this.currentEpoch & 1) as 0 | 1;
    const seen = (carried ^ 1) as 0 | 1;
    const ignored = emptyDrift();
    const seeded = new Set<Vertex>();
    const seedOne = (vertex: Vertex, totals: SubscriptionTotals | NodeTotals): void => {
      overwrite(vertex, totals, carried, ignored);
      vertex.clearSettled(seen);
      seeded.add(vertex);
    };
    for (const totals of snapshot.subscriptions) {
      seedOne(this.subscriptionVertex(totals.show, totals.alloc), totals);
    }
    for (const totals of snapshot.folders)
      seedOne(this.nodeVertex(this.folders, 'folder', totals.id, totals.show), totals);
    for (const totals of snapshot.jobs) {
      const job = this.nodeVertex(this.jobs, 'job', totals.id, totals.show);
      seedOne(job, totals);
      if (totals.folder !== undefined) this.followSnapshotFolder(job, totals.folder, totals);
    }
    // Every other key: its confirms from before this epoch bump will be seen by the next
    // recompute's snapshot, so they belong in the bucket that recompute clears, not in the one
    // it carries (that would count them twice for a whole pass).
    for (const vertex of this.allVertices()) {
      if (seeded.has(vertex)) continue;
      vertex.addSettled(carried, vertex.settledCores(seen), vertex.settledGpus(seen));
      vertex.clearSettled(seen);
    }
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
    for (const cap of caps.jobs) {
      const job = this.nodeVertex(this.jobs, 'job', cap.id, cap.show);
      this.setNodeCap(job, cap, onlyUnseeded);
      // A move of a known job is the caller's decision (moveJob): a read may be older than it.
      if (job.parentFolder === undefined && cap.folder !== undefined) {
        holdUnder(job, this.nodeVertex(this.folders, 'folder', cap.folder, cap.show));
      }
    }
    const shows = options.authoritativeShows;
    if (shows === undefined) return;
    for (const [show, byAlloc] of this.subscriptions) {
      if (!shows.has(show)) continue;
      for (const vertex of byAlloc.values()) {
        if (listed.has(vertex)) continue;
        // Fails closed, and unseeded so a booking reads it again (the read may predate its row).
        vertex.maxCores = 0;
        vertex.capsSeeded = false;
      }
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
  /**
   * Vertices forgotten so far (ever increasing). A reader that walks the store in insertion
   * order across several turns (the paged state view) uses it to tell how far positions
   * may have shifted left since it last looked.
   */
  get removals(): number {
    return this.removedVertices;
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

  private assertNoOverwrite(caller: string): void {
    if (this.overwriting) throw new Error(`${caller}: a sliced overwrite is still running`);
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

  // In-flight parts are floored at 0 too: with amounts in range the sums are exact and the
  // floor never acts, but a negative in-flight part would be added into every later overwrite.
  private settle(vertex: Vertex, bucket: 0 | 1, cores: number, gpus: number): void {
    vertex.inflightCores = minus(vertex.inflightCores, cores);
    vertex.inflightGpus = minus(vertex.inflightGpus, gpus);
    vertex.addSettled(bucket, cores, gpus);
  }

  private undo(vertex: Vertex, cores: number, gpus: number): void {
    // Clamped like a release: only a double-counted release can have pushed live below it.
    vertex.cores = minus(vertex.cores, cores);
    vertex.gpus = minus(vertex.gpus, gpus);
    vertex.inflightCores = minus(vertex.inflightCores, cores);
    vertex.inflightGpus = minus(vertex.inflightGpus, gpus);
  }
}

/** Point a job at the folder that holds its usage (or at none), keeping every folder's `heldJobs`. */
function holdUnder(job: Vertex, folder: Vertex | undefined): void {
  if (job.parentFolder !== undefined) job.parentFolder.heldJobs--;
  job.parentFolder = folder;
  if (folder !== undefined) folder.heldJobs++;
}

/** Add (sign 1) or remove (sign -1, clamped at 0) a job's whole usage to or from a folder. */
function shiftUsage(job: Vertex, folder: Vertex, sign: 1 | -1): void {
  const apply = (value: number, delta: number) => Math.max(0, value + sign * delta);
  folder.cores = apply(folder.cores, job.cores);
  folder.gpus = apply(folder.gpus, job.gpus);
  folder.inflightCores = apply(folder.inflightCores, job.inflightCores);
  folder.inflightGpus = apply(folder.inflightGpus, job.inflightGpus);
  folder.settledCores0 = apply(folder.settledCores0, job.settledCores0);
  folder.settledCores1 = apply(folder.settledCores1, job.settledCores1);
  folder.settledGpus0 = apply(folder.settledGpus0, job.settledGpus0);
  folder.settledGpus1 = apply(folder.settledGpus1, job.settledGpus1);
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
