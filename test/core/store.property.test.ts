/**
 * Property-based test of the store against a model of the database (SPEC §1 invariant).
 *
 * The model holds the committed proc rows (the truth `SUM(proc)` reads), the NOTIFY queue
 * in commit order, and a recompute pass whose steps (begin, snapshot read, fence, overwrite)
 * interleave with everything else, as they do in the daemon. A pass is either a recompute of
 * every show or the flip seed of one show (single flight together, as the service runs them).
 * Clients may break the protocol one way the daemon can repair: a booking whose lease expired
 * gets its proc inserted late and confirms late (`recountLate`). After every step:
 *   - no live counter is below SUM(proc) + applied bookings whose proc is not committed;
 *   - no applied booking took the truth past a cap.
 * After everything settles, the queue drains and two full passes run, every counter equals
 * SUM(proc) exactly.
 *
 * The farm's lifecycle is modelled too (issue 11): a job killed (FINISHED) before its procs are
 * released, a job created after the cap read (its first booking reads its caps, as the
 * service's key resolution does), and a job moved to another folder (learned by the daemon
 * at its next booking — which names the new folder — or at the next pass whose read saw it;
 * until then the model attributes the job to the folder the daemon knows: that is the
 * documented window). Companion tests show the model catches each class when the fix is
 * undone.
 *
 * A recompute's overwrite runs a few vertices per `step` (issue 14: no booking waits behind a
 * recompute), with bookings, settles, releases and expiries in between; a booking that must
 * read its keys waits until the overwrite is done, as the service's bulk writes do.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildCapSet, buildSnapshot, type BookedRow, type CapRows } from '../../src/core/boundary.js';
import { MAX_BOOKING_CORES, MAX_BOOKING_GPUS } from '../../src/core/booking-range.js';
import type { Steps } from '../../src/core/steps.js';
import { Booking, Store } from '../../src/core/store.js';
import type { DriftReport, Snapshot } from '../../src/core/types.js';
import type { Vertex } from '../../src/core/vertex.js';

const SHOWS = ['s0', 's1'];
const ALLOCS = ['a0', 'a1'];
const FOLDERS = [
  { id: 'f0', show: 's0' },
  { id: 'f1', show: 's0' },
  { id: 'f2', show: 's1' },
];
/** j4 and j5 exist only once a `createJob` step created them (after the first cap read). */
const JOBS = [
  { id: 'j0', folder: 'f0' },
  { id: 'j1', folder: 'f0' },
  { id: 'j2', folder: 'f1' },
  { id: 'j3', folder: 'f2' },
  { id: 'j4', folder: 'f1' },
  { id: 'j5', folder: 'f2' },
].map((job) => ({ ...job, show: FOLDERS.find((f) => f.id === job.folder)!.show }));
const INITIAL_JOBS = 4;

interface Key {
  show: string;
  alloc: string;
  folder: string;
  job: string;
}
/** A proc row: its folder is its job's folder, whatever it is now. */
interface Proc {
  show: string;
  alloc: string;
  job: string;
  cores: number;
  gpus: number;
}
interface ModelBooking {
  handle: Booking;
  key: Omit<Proc, 'cores' | 'gpus'>;
  cores: number;
  gpus: number;
  proc?: Proc;
  ended: boolean;
  /** Settled by lease expiry; a late confirm may still arrive. */
  expired?: boolean;
  recounted?: boolean;
}

/** Undo one fix of issue 11 (the companion tests show the model then fails). */
interface Mutation {
  /** The snapshot skips procs of FINISHED jobs (the old rule): item 1. */
  skipFinishedProcs?: boolean;
  /** A booking of a job the store has no caps for is booked without reading them: item 2. */
  noResolution?: boolean;
  /** A job found in another folder is not moved in the store: item 4. */
  noMoves?: boolean;
}
type Notification = { kind: 'release'; proc: Proc; folder: string } | { kind: 'fence'; pass: number };
interface Pass {
  id: number;
  epoch: number;
  /** A flip seed of this show; a recompute of every show when undefined. */
  show?: string;
  snapshot?: Snapshot;
  /** The cap read of the snapshot (its job rows carry each job's folder then). */
  caps?: CapRows;
  movesSince: number;
  fenceQueued: boolean;
  fenceDelivered: boolean;
}

type Op =
  | { op: 'book'; job: number; alloc: number; cores: number; gpus: number }
  | { op: 'commitProc' | 'confirm' | 'rollback' | 'expire' | 'deleteProc' | 'lateConfirm'; pick: number }
  | { op: 'beginSeed'; show: number }
  | { op: 'createJob' | 'finishJob'; job: number }
  | { op: 'moveJob'; job: number; folder: number }
  | { op: 'step'; count: number }
  | { op: 'deliver' | 'begin' | 'snapshot' | 'fence' | 'finish' };

const capsArb = fc.record({
  burst: fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 4, maxLength: 4 }),
  folderCores: fc.array(fc.integer({ min: -1, max: 15 }), { minLength: 3, maxLength: 3 }),
  folderGpus: fc.array(fc.integer({ min: -1, max: 4 }), { minLength: 3, maxLength: 3 }),
  jobCores: fc.array(fc.integer({ min: -1, max: 10 }), { minLength: 6, maxLength: 6 }),
  jobGpus: fc.array(fc.integer({ min: -1, max: 3 }), { minLength: 6, maxLength: 6 }),
});
type Caps = {
  burst: number[];
  folderCores: number[];
  folderGpus: number[];
  jobCores: number[];
  jobGpus: number[];
};

type Weights = Partial<Record<Op['op'], number>>;

/** Random steps; `weights` overrides how often each kind is drawn (default below). */
function opsWith(weights: Weights = {}): fc.Arbitrary<Op> {
  const w = (op: Op['op'], fallback: number) => weights[op] ?? fallback;
  return fc.oneof(
    {
      weight: w('book', 6),
      arbitrary: fc.record({
        op: fc.constant('book' as const),
        job: fc.nat({ max: JOBS.length - 1 }),
        alloc: fc.nat({ max: ALLOCS.length - 1 }),
        cores: fc.integer({ min: 0, max: 5 }),
        gpus: fc.integer({ min: 0, max: 2 }),
      }),
    },
    ...(['commitProc', 'confirm', 'rollback', 'expire', 'deleteProc', 'lateConfirm'] as const).map((op) => ({
      weight: w(op, op === 'expire' || op === 'lateConfirm' ? 1 : 4),
      arbitrary: fc.record({ op: fc.constant(op), pick: fc.nat() }),
    })),
    ...(['deliver', 'begin', 'snapshot', 'fence', 'finish'] as const).map((op) => ({
      weight: w(op, op === 'deliver' ? 6 : 2),
      arbitrary: fc.constant({ op }),
    })),
    ...(['createJob', 'finishJob'] as const).map((op) => ({
      weight: w(op, 1),
      arbitrary: fc.record({ op: fc.constant(op), job: fc.nat({ max: JOBS.length - 1 }) }),
    })),
    {
      weight: w('moveJob', 1),
      arbitrary: fc.record({
        op: fc.constant('moveJob' as const),
        job: fc.nat({ max: JOBS.length - 1 }),
        folder: fc.nat({ max: FOLDERS.length - 1 }),
      }),
    },
    {
      weight: w('step', 4),
      arbitrary: fc.record({ op: fc.constant('step' as const), count: fc.integer({ min: 1, max: 4 }) }),
    },
    {
      weight: w('beginSeed', 2),
      arbitrary: fc.record({
        op: fc.constant('beginSeed' as const),
        show: fc.nat({ max: SHOWS.length - 1 }),
      }),
    },
  );
}

const opArb = opsWith();
/** Flip seeds and late confirms racing confirms: recomputes rare, no rollbacks or deletes. */
const flipArb = opsWith({ begin: 1, beginSeed: 4, rollback: 0, deleteProc: 1, expire: 3, lateConfirm: 3 });

/** Recomputes back to back, their overwrites a step at a time with everything else in between. */
const slicedArb = opsWith({ begin: 4, snapshot: 4, fence: 4, finish: 4, step: 8, beginSeed: 1, expire: 2 });

/** Generous caps, so most bookings apply and the races have something to race on. */
const roomyCapsArb = fc.record({
  burst: fc.array(fc.integer({ min: 10, max: 30 }), { minLength: 4, maxLength: 4 }),
  folderCores: fc.array(fc.integer({ min: -1, max: 0 }), { minLength: 3, maxLength: 3 }),
  folderGpus: fc.array(fc.integer({ min: -1, max: 0 }), { minLength: 3, maxLength: 3 }),
  jobCores: fc.array(fc.integer({ min: -1, max: 0 }), { minLength: JOBS.length, maxLength: JOBS.length }),
  jobGpus: fc.array(fc.integer({ min: -1, max: 0 }), { minLength: JOBS.length, maxLength: JOBS.length }),
});

class Model {
  readonly store = new Store();
  readonly procs: Proc[] = [];
  readonly bookings: ModelBooking[] = [];
  readonly queue: Notification[] = [];
  pass: Pass | undefined;
  /** The open recompute's overwrite, applied a few vertices per `step`. */
  private overwrite: Steps<DriftReport> | undefined;
  private passes = 0;
  /** The database: which jobs exist, which are FINISHED, each job's folder. */
  readonly created = new Set(JOBS.slice(0, INITIAL_JOBS).map((j) => j.id));
  readonly finished = new Set<string>();
  readonly pgFolder = new Map(JOBS.map((j) => [j.id, j.folder]));
  /** The folder the daemon holds each job under (it learns a move at a booking or a pass). */
  readonly known = new Map(JOBS.map((j) => [j.id, j.folder]));
  /** Moves learned by a booking's read, by sequence (a pass whose read is older keeps them). */
  private readonly movedAt = new Map<string, number>();
  private moveSeq = 0;

  constructor(
    readonly caps: Caps,
    private readonly mutation: Mutation = {},
  ) {
    const initial = this.capRows();
    // Caps in whole cores already: multiplier 1 keeps the numbers as written.
    this.store.setCaps(buildCapSet(initial, 1));
  }

  /** The cap read now: subscriptions, folders, and jobs that exist and are live or still have procs. */
  capRows(): CapRows {
    const caps = this.caps;
    return {
      subscriptions: SHOWS.flatMap((show, s) =>
        ALLOCS.map((alloc, a) => ({ show, alloc, burst: caps.burst[s * 2 + a]! })),
      ),
      folders: FOLDERS.map((f, i) => ({
        ...f,
        maxCores: caps.folderCores[i]!,
        maxGpus: caps.folderGpus[i]!,
      })),
      jobs: JOBS.flatMap((j, i) =>
        this.created.has(j.id) && (!this.finished.has(j.id) || this.procs.some((p) => p.job === j.id))
          ? [
              {
                id: j.id,
                show: j.show,
                folder: this.pgFolder.get(j.id)!,
                maxCores: caps.jobCores[i]!,
                maxGpus: caps.jobGpus[i]!,
              },
            ]
          : [],
      ),
    };
  }

  private withFolder(item: Omit<Proc, 'cores' | 'gpus'>): Key {
    return { ...item, folder: this.known.get(item.job)! };
  }

  /** SUM(proc) + applied bookings whose proc row is not committed, for one vertex. */
  truth(match: (key: Key) => boolean): { cores: number; gpus: number } {
    const uncommitted = this.bookings
      .filter((b) => !b.ended && b.proc === undefined)
      .map((b) => ({ ...b.key, cores: b.cores, gpus: b.gpus }));
    return total([...this.procs, ...uncommitted], (p) => match(this.withFolder(p)));
  }

  sumProc(match: (key: Key) => boolean): { cores: number; gpus: number } {
    return total(this.procs, (p) => match(this.withFolder(p)));
  }

  vertices(): { name: string; match: (k: Key) => boolean; live: () => { cores: number; gpus: number } }[] {
    const zero = { cores: 0, gpus: 0 };
    return [
      ...SHOWS.flatMap((show) =>
        ALLOCS.map((alloc) => ({
          name: `sub ${show}/${alloc}`,
          match: (k: Key) => k.show === show && k.alloc === alloc,
          live: () => this.store.subscription(show, alloc) ?? zero,
        })),
      ),
      ...FOLDERS.map((f) => ({
        name: `folder ${f.id}`,
        match: (k: Key) => k.folder === f.id,
        live: () => this.store.folder(f.id) ?? zero,
      })),
      ...JOBS.map((j) => ({
        name: `job ${j.id}`,
        match: (k: Key) => k.job === j.id,
        live: () => this.store.job(j.id) ?? zero,
      })),
    ];
  }

  run(op: Op): void {
    switch (op.op) {
      case 'book':
        return this.book(op);
      case 'commitProc': {
        const b = pick(
          this.bookings.filter((x) => !x.ended && x.proc === undefined),
          op.pick,
        );
        if (b) {
          b.proc = { ...b.key, cores: b.cores, gpus: b.gpus };
          this.procs.push(b.proc);
        }
        return;
      }
      case 'confirm': {
        const b = pick(
          this.bookings.filter((x) => !x.ended && x.proc !== undefined),
          op.pick,
        );
        if (b) this.end(b, this.store.confirm(b.handle));
        return;
      }
      case 'rollback': {
        const b = pick(
          this.bookings.filter((x) => !x.ended && x.proc === undefined),
          op.pick,
        );
        if (b) this.end(b, this.store.rollback(b.handle));
        return;
      }
      case 'expire': {
        // Lease expiry settles like a confirm, whether or not the proc was inserted.
        const b = pick(
          this.bookings.filter((x) => !x.ended),
          op.pick,
        );
        if (b) {
          this.end(b, this.store.confirm(b.handle));
          b.expired = true;
        }
        return;
      }
      case 'lateConfirm': {
        // A slow client: its lease expired; it inserts its proc now if it had not, then confirms.
        const b = pick(
          this.bookings.filter((x) => x.expired === true && x.recounted !== true),
          op.pick,
        );
        if (b) {
          if (b.proc === undefined) {
            b.proc = { ...b.key, cores: b.cores, gpus: b.gpus };
            this.procs.push(b.proc);
          }
          expect(this.store.recountLate(b.handle)).toBe(true);
          b.recounted = true;
        }
        return;
      }
      case 'deleteProc': {
        if (this.procs.length === 0) return;
        const [proc] = this.procs.splice(op.pick % this.procs.length, 1);
        // Cuebot's release names the job's folder in the database at the delete.
        this.queue.push({ kind: 'release', proc: proc!, folder: this.pgFolder.get(proc!.job)! });
        return;
      }
      case 'createJob':
        this.created.add(JOBS[op.job]!.id);
        return;
      case 'finishJob': {
        const job = JOBS[op.job]!.id;
        if (this.created.has(job)) this.finished.add(job);
        return;
      }
      case 'moveJob': {
        const job = JOBS[op.job]!;
        const folder = FOLDERS[op.folder]!;
        // A job moves within its show only.
        if (folder.show === job.show) this.pgFolder.set(job.id, folder.id);
        return;
      }
      case 'deliver':
        return this.deliver();
      case 'begin':
        if (!this.pass)
          this.pass = {
            id: ++this.passes,
            epoch: this.store.beginRecompute(),
            movesSince: this.moveSeq,
            fenceQueued: false,
            fenceDelivered: false,
          };
        return;
      case 'beginSeed':
        if (!this.pass)
          this.pass = {
            id: ++this.passes,
            epoch: this.store.beginRecompute(),
            movesSince: this.moveSeq,
            show: SHOWS[op.show]!,
            fenceQueued: false,
            fenceDelivered: false,
          };
        return;
      case 'snapshot':
        if (this.pass && !this.pass.snapshot) {
          this.pass.caps = this.capRows();
          this.pass.snapshot = this.readSnapshot(this.pass.caps, this.pass.show);
        }
        return;
      case 'fence':
        if (this.pass?.snapshot && !this.pass.fenceQueued) {
          this.pass.fenceQueued = true;
          this.queue.push({ kind: 'fence', pass: this.pass.id });
        }
        return;
      case 'finish':
        if (this.pass?.fenceDelivered && this.overwrite === undefined) {
          const pass = this.pass;
          if (pass.show === undefined) {
            // As the service's recompute: caps of new keys, moves the read saw, then the overwrite.
            this.store.setCaps(buildCapSet(pass.caps!, 1), { onlyUnseeded: true });
            for (const row of pass.caps!.jobs) {
              if ((this.movedAt.get(row.id) ?? 0) > pass.movesSince) continue;
              this.learnFolder(row.id, row.folder);
            }
            this.overwrite = this.store.beginOverwrite(pass.snapshot!, pass.epoch);
          } else {
            this.store.seedShowBooked(pass.snapshot!, pass.epoch);
            this.passDone();
          }
        }
        return;
      case 'step':
        return this.advance(op.count);
    }
  }

  /** Run up to `count` steps of the open overwrite. */
  advance(count: number): void {
    if (this.overwrite === undefined) return;
    for (let i = 0; i < count; i++) {
      if (this.overwrite.next().done === true) {
        this.overwrite = undefined;
        return this.passDone();
      }
    }
  }

  /** The service's bulk writes: a key read waits until the open overwrite is done. */
  finishOverwrite(): void {
    this.advance(Number.POSITIVE_INFINITY);
  }

  private passDone(): void {
    // A job the store forgot holds nothing: the daemon knows its folder from its next read.
    for (const job of JOBS)
      if (this.store.job(job.id) === undefined) this.known.set(job.id, this.pgFolder.get(job.id)!);
    this.pass = undefined;
  }

  /** The daemon learns a job's folder from a read: the store moves it (unless mutated). */
  private learnFolder(job: string, folder: string): boolean {
    if (this.known.get(job) === folder) return false;
    if (this.store.job(job) === undefined) {
      this.known.set(job, folder);
      return false;
    }
    // The daemon has read the new folder: from now on the job's usage belongs there.
    this.known.set(job, folder);
    if (!this.mutation.noMoves) this.store.moveJob(job, folder);
    return true;
  }

  private book(op: Extract<Op, { op: 'book' }>): void {
    const job = JOBS[op.job]!;
    // The scheduler books jobs that exist and are not finished, naming the job's folder now.
    if (!this.created.has(job.id) || this.finished.has(job.id)) return;
    const folder = this.pgFolder.get(job.id)!;
    const vertex = this.store.job(job.id);
    if (!this.mutation.noResolution && (vertex?.capsSeeded !== true || vertex.folderId !== folder)) {
      // The service's key resolution: read the job (caps, folder) before checking.
      this.finishOverwrite();
      const row = this.capRows().jobs.find((r) => r.id === job.id)!;
      if (this.learnFolder(job.id, row.folder)) this.movedAt.set(job.id, ++this.moveSeq);
      this.store.setCaps(buildCapSet({ subscriptions: [], folders: [], jobs: [row] }, 1), {
        onlyUnseeded: true,
      });
    }
    const key = { show: job.show, alloc: ALLOCS[op.alloc]!, job: job.id };
    const named = { ...key, folder };
    const before = this.vertices().map((v) => ({ v, truth: this.truth(v.match) }));
    const outcome = this.store.book({ ...named, cores: op.cores, gpus: op.gpus });
    if (!(outcome instanceof Booking)) return;
    this.bookings.push({ handle: outcome, key, cores: op.cores, gpus: op.gpus, ended: false });
    // No applied booking may take the truth past an enforced cap (caps as the database holds them).
    const caps = this.capRows();
    const sub = caps.subscriptions.find((r) => r.show === key.show && r.alloc === key.alloc)!;
    const folderCap = caps.folders.find((r) => r.id === folder)!;
    const jobCap = caps.jobs.find((r) => r.id === key.job)!;
    const truthOf = (name: string) => before.find((x) => x.v.name === name)!.truth;
    if (op.cores > 0) {
      expect(truthOf(`sub ${key.show}/${key.alloc}`).cores + op.cores).toBeLessThanOrEqual(Number(sub.burst));
      if (Number(folderCap.maxCores) > 0) {
        expect(truthOf(`folder ${folder}`).cores + op.cores).toBeLessThanOrEqual(Number(folderCap.maxCores));
      }
      if (Number(jobCap.maxCores) > 0) {
        expect(truthOf(`job ${key.job}`).cores + op.cores).toBeLessThanOrEqual(Number(jobCap.maxCores));
      }
    }
    if (op.gpus > 0) {
      if (Number(folderCap.maxGpus) > 0) {
        expect(truthOf(`folder ${folder}`).gpus + op.gpus).toBeLessThanOrEqual(Number(folderCap.maxGpus));
      }
      if (Number(jobCap.maxGpus) > 0) {
        expect(truthOf(`job ${key.job}`).gpus + op.gpus).toBeLessThanOrEqual(Number(jobCap.maxGpus));
      }
    }
  }

  private end(b: ModelBooking, accepted: boolean): void {
    expect(accepted).toBe(true);
    b.ended = true;
  }

  deliver(): void {
    const note = this.queue.shift();
    if (!note) return;
    if (note.kind === 'release') {
      const { proc, folder } = note;
      this.store.applyRelease({ ...proc, folder, cores: -proc.cores, gpus: -proc.gpus });
    } else if (this.pass?.id === note.pass) {
      this.pass.fenceDelivered = true;
    }
  }

  /** SUM(proc) of every show, or of one show (a flip seed reads only its show). */
  readSnapshot(caps: CapRows = this.capRows(), show?: string): Snapshot {
    const mine = <T extends { show: string }>(rows: T[]) =>
      show === undefined ? rows : rows.filter((row) => row.show === show);
    const rows: BookedRow[] = mine(this.procs)
      .filter((p) => !(this.mutation.skipFinishedProcs && this.finished.has(p.job)))
      .map((p) => ({ ...p, folder: this.pgFolder.get(p.job)! }));
    caps = { subscriptions: mine(caps.subscriptions), folders: mine(caps.folders), jobs: mine(caps.jobs) };
    return buildSnapshot(rows, caps, 1);
  }

  fullPass(): void {
    for (const op of ['begin', 'snapshot', 'fence'] as const) this.run({ op });
    while (this.pass && !this.pass.fenceDelivered) this.deliver();
    this.run({ op: 'finish' });
    this.finishOverwrite();
  }

  checkInvariant(step: string): void {
    for (const v of this.vertices()) {
      const live = v.live();
      const truth = this.truth(v.match);
      if (live.cores < truth.cores || live.gpus < truth.gpus) {
        throw new Error(
          `${step}: ${v.name} live ${live.cores}c/${live.gpus}g below truth ${truth.cores}c/${truth.gpus}g`,
        );
      }
      if (live.cores < 0 || live.gpus < 0) throw new Error(`${step}: ${v.name} below 0`);
    }
    expect(this.store.inflightCount).toBe(this.bookings.filter((b) => !b.ended).length);
    assertNoNegativeCounter(this.store, step);
    assertFolderHoldings(this.store, step);
  }
}

/**
 * Every job's folder is one the store still holds (a forgotten folder would take the job's
 * usage out of every folder check), and every folder counts the jobs that point at it.
 */
function assertFolderHoldings(store: Store, step: string): void {
  // White box: the views are the store's own vertices.
  const folders = new Set([...store.vertices('folder')] as unknown as Vertex[]);
  const held = new Map<Vertex, number>();
  for (const job of [...store.vertices('job')] as unknown as Vertex[]) {
    const parent = job.parentFolder;
    if (parent === undefined) continue;
    if (!folders.has(parent))
      throw new Error(`${step}: job ${job.id} points at forgotten folder ${parent.id}`);
    held.set(parent, (held.get(parent) ?? 0) + 1);
  }
  for (const folder of folders) {
    if (folder.heldJobs !== (held.get(folder) ?? 0))
      throw new Error(
        `${step}: folder ${folder.id} counts ${folder.heldJobs} jobs, holds ${held.get(folder) ?? 0}`,
      );
  }
}

/** Every counter of every vertex (live, in flight, both settled buckets) is >= 0. */
function assertNoNegativeCounter(store: Store, step: string): void {
  for (const kind of ['subscription', 'folder', 'job'] as const) {
    for (const v of store.vertices(kind)) {
      const counters = {
        cores: v.cores,
        gpus: v.gpus,
        inflightCores: v.inflightCores,
        inflightGpus: v.inflightGpus,
        settledCores0: v.settledCores(0),
        settledCores1: v.settledCores(1),
        settledGpus0: v.settledGpus(0),
        settledGpus1: v.settledGpus(1),
      };
      for (const [name, value] of Object.entries(counters)) {
        if (!(value >= 0)) throw new Error(`${step}: ${kind} ${v.id} ${name} = ${value}`);
      }
    }
  }
}

function total(items: Proc[], match: (proc: Proc) => boolean): { cores: number; gpus: number } {
  let cores = 0;
  let gpus = 0;
  for (const item of items) {
    if (!match(item)) continue;
    cores += item.cores;
    gpus += item.gpus;
  }
  return { cores, gpus };
}

function pick<T>(items: T[], index: number): T | undefined {
  return items.length === 0 ? undefined : items[index % items.length];
}

/** Every subscription's burst `burst`; every folder and job cap unlimited. */
function onlyBursts(burst: number): Caps {
  return {
    burst: [burst, burst, burst, burst],
    folderCores: [-1, -1, -1],
    folderGpus: [-1, -1, -1],
    jobCores: [-1, -1, -1, -1, -1, -1],
    jobGpus: [-1, -1, -1, -1, -1, -1],
  };
}

describe('Store invariant under random interleavings (fast-check)', () => {
  it('never reads below SUM(proc) + in-flight, never admits over a cap, and converges', () => {
    checkProperty(capsArb, fc.array(opArb, { maxLength: 250, size: 'medium' }));
  });

  it('holds when flip seeds and late confirms race confirms (focused mix)', () => {
    // Long runs (fast-check's default size keeps arrays to about ten steps).
    checkProperty(roomyCapsArb, fc.array(flipArb, { minLength: 40, maxLength: 120 }), 200);
  });

  it('holds when bookings, settles and releases land between the steps of an overwrite (focused mix)', () => {
    checkProperty(roomyCapsArb, fc.array(slicedArb, { minLength: 60, maxLength: 160 }), 300);
  });

  function checkProperty(caps: fc.Arbitrary<Caps>, runs: fc.Arbitrary<Op[]>, numRuns = 400): void {
    fc.assert(
      fc.property(caps, runs, (caps, ops) => {
        const model = new Model(caps);
        ops.forEach((op, i) => {
          model.run(op);
          model.checkInvariant(`step ${i} (${op.op})`);
        });
        // Quiescence: every booking ends, the feed drains, the open pass completes.
        for (const b of model.bookings.filter((x) => !x.ended)) {
          if (b.proc) model.store.confirm(b.handle);
          else model.store.rollback(b.handle);
          b.ended = true;
        }
        while (model.queue.length > 0) model.deliver();
        if (model.pass) {
          model.run({ op: 'snapshot' });
          model.fullPass();
        }
        model.checkInvariant('quiescent');
        model.fullPass();
        model.fullPass();
        for (const v of model.vertices()) {
          const { cores, gpus } = v.live();
          expect({ cores, gpus }, v.name).toEqual(model.sumProc(v.match));
        }
      }),
      { numRuns },
    );
  }

  it('no operation sequence drives any counter below 0: extreme amounts, stray releases, recomputes', () => {
    // Amounts a buggy or hostile client may send, including the 2^53 − 1 GPUs: the
    // store refuses what is out of range (RangeError, nothing changed) and books the rest.
    const amount = (max: number) =>
      fc.oneof(
        fc.integer({ min: 0, max: 3 }),
        fc.constantFrom(max, max - 1, max + 1, 2 ** 53 - 1, 2 ** 53 - 2, Number.MAX_SAFE_INTEGER),
      );
    type Step =
      | { op: 'book'; job: number; cores: number; gpus: number }
      | { op: 'confirm' | 'rollback'; pick: number }
      | { op: 'release'; job: number; cores: number; gpus: number }
      | { op: 'recompute' };
    const stepArb: fc.Arbitrary<Step> = fc.oneof(
      fc.record({
        op: fc.constant('book' as const),
        job: fc.nat({ max: JOBS.length - 1 }),
        cores: amount(MAX_BOOKING_CORES),
        gpus: amount(MAX_BOOKING_GPUS),
      }),
      fc.record({ op: fc.constantFrom('confirm' as const, 'rollback' as const), pick: fc.nat() }),
      // A release the store never booked (a duplicate notification, Cuebot's own proc).
      fc.record({
        op: fc.constant('release' as const),
        job: fc.nat({ max: JOBS.length - 1 }),
        cores: amount(MAX_BOOKING_CORES),
        gpus: amount(MAX_BOOKING_GPUS),
      }),
      fc.constant({ op: 'recompute' as const }),
    );
    fc.assert(
      fc.property(fc.array(stepArb, { maxLength: 120 }), (steps) => {
        const store = new Store();
        const unlimited = { maxCores: -1, maxGpus: -1 };
        store.setCaps({
          subscriptions: [{ show: 's0', alloc: 'a0', burst: 2 ** 52 }],
          folders: FOLDERS.map((f) => ({ ...f, ...unlimited })),
          jobs: JOBS.map((j) => ({ id: j.id, show: j.show, ...unlimited })),
        });
        const open: Booking[] = [];
        steps.forEach((step, i) => {
          const job = 'job' in step ? JOBS[step.job]! : undefined;
          const key = job && { show: 's0', alloc: 'a0', folder: job.folder, job: job.id };
          if (step.op === 'book') {
            let outcome;
            try {
              outcome = store.book({ ...key!, cores: step.cores, gpus: step.gpus });
            } catch (error) {
              expect(error).toBeInstanceOf(RangeError);
              expect(step.cores > MAX_BOOKING_CORES || step.gpus > MAX_BOOKING_GPUS).toBe(true);
            }
            if (outcome instanceof Booking) open.push(outcome);
          } else if (step.op === 'confirm' || step.op === 'rollback') {
            if (open.length > 0) {
              const [booking] = open.splice(step.pick % open.length, 1);
              store[step.op](booking!);
            }
          } else if (step.op === 'release') {
            store.applyRelease({ ...key!, cores: -step.cores, gpus: -step.gpus });
          } else {
            const zero = { cores: 0, gpus: 0 };
            store.overwriteCounters(
              {
                subscriptions: [{ show: 's0', alloc: 'a0', ...zero }],
                folders: FOLDERS.map((f) => ({ ...f, ...zero })),
                jobs: JOBS.map((j) => ({ id: j.id, show: j.show, ...zero })),
              },
              store.beginRecompute(),
            );
          }
          assertNoNegativeCounter(store, `step ${i} (${step.op})`);
        });
      }),
      { numRuns: 300 },
    );
  });

  it('would read below the truth if the overwrite did not wait for the fence (the model can fail)', () => {
    // Guards the test itself: skipping the fence must be caught by the invariant.
    const model = new Model(onlyBursts(10));
    model.run({ op: 'book', job: 0, alloc: 0, cores: 4, gpus: 0 });
    model.run({ op: 'commitProc', pick: 0 });
    model.run({ op: 'confirm', pick: 0 });
    model.run({ op: 'deleteProc', pick: 0 }); // release queued, not yet delivered
    model.run({ op: 'begin' });
    model.run({ op: 'snapshot' }); // snapshot already misses the deleted proc
    model.store.overwriteCounters(model.pass!.snapshot!, model.pass!.epoch); // no fence
    model.pass = undefined;
    model.run({ op: 'book', job: 0, alloc: 0, cores: 3, gpus: 0 }); // in flight, no proc yet
    model.deliver(); // the late release subtracts a proc the snapshot never counted
    expect(() => model.checkInvariant('unfenced')).toThrow(/below truth/);
  });

  it('a job moved while an overwrite is half done would under-count its old folder: the store refuses the move', () => {
    const model = new Model(onlyBursts(20));
    for (const [job, cores] of [
      [0, 3],
      [1, 2],
    ] as const) {
      model.run({ op: 'book', job, alloc: 0, cores, gpus: 0 });
      model.run({ op: 'commitProc', pick: 0 });
      model.run({ op: 'confirm', pick: 0 });
    }
    model.fullPass();
    for (const op of ['begin', 'snapshot', 'fence', 'deliver', 'finish'] as const) model.run({ op });
    model.run({ op: 'moveJob', job: 0, folder: 1 }); // in the database, after the snapshot read
    model.advance(4 + 3); // every subscription and folder overwritten; no job yet
    expect(() => model.store.moveJob('j0', 'f1')).toThrow(/sliced overwrite/);
    // Undo the guard: a booking's key read moves the job now, between two steps.
    const guard = model.store as unknown as { overwriting: boolean };
    guard.overwriting = false;
    model.store.moveJob('j0', 'f1');
    guard.overwriting = true;
    model.known.set('j0', 'f1');
    model.finishOverwrite();
    expect(() => model.checkInvariant('moved mid-overwrite')).toThrow(/folder f0 live 0c\/0g below truth 2c/);
  });

  describe('catches each lifecycle class of issue 11 when its fix is undone', () => {
    const open: Caps = { ...onlyBursts(20), jobCores: [-1, -1, -1, -1, 2, -1] };

    /** A job runs 4 cores, is killed (FINISHED), and a pass runs before its proc is released. */
    function killedJob(mutation: Mutation): Model {
      const model = new Model(open, mutation);
      model.run({ op: 'book', job: 0, alloc: 0, cores: 4, gpus: 0 });
      model.run({ op: 'commitProc', pick: 0 });
      model.run({ op: 'confirm', pick: 0 });
      model.run({ op: 'finishJob', job: 0 });
      model.fullPass();
      return model;
    }

    it('a job finishing before its procs are released (snapshot skipping FINISHED jobs)', () => {
      expect(() => killedJob({}).checkInvariant('fixed')).not.toThrow();
      expect(() => killedJob({ skipFinishedProcs: true }).checkInvariant('mutated')).toThrow(/below truth/);
    });

    it('a job created after the cap read (booked without reading its caps)', () => {
      const book = (mutation: Mutation) => {
        const model = new Model(open, mutation);
        model.run({ op: 'createJob', job: 4 }); // capped at 2 cores
        model.run({ op: 'book', job: 4, alloc: 0, cores: 5, gpus: 0 });
        return model;
      };
      expect(() => book({})).not.toThrow();
      expect(() => book({ noResolution: true })).toThrow();
    });

    it('a job moving folder (the store keeping its usage in the old folder)', () => {
      const move = (mutation: Mutation) => {
        const model = new Model(open, mutation);
        model.run({ op: 'book', job: 0, alloc: 0, cores: 3, gpus: 0 });
        model.run({ op: 'commitProc', pick: 0 });
        model.run({ op: 'confirm', pick: 0 });
        model.run({ op: 'moveJob', job: 0, folder: 1 });
        model.run({ op: 'book', job: 0, alloc: 0, cores: 1, gpus: 0 }); // names f1: read, moved
        model.checkInvariant('after the move');
        return model;
      };
      expect(() => move({})).not.toThrow();
      expect(() => move({ noMoves: true })).toThrow(/folder f1 live .* below truth/);
    });
  });
});
