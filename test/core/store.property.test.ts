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
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildSnapshot, type BookedRow, type CapRows } from '../../src/core/boundary.js';
import { Booking, Store } from '../../src/core/store.js';
import type { Snapshot } from '../../src/core/types.js';

const SHOWS = ['s0', 's1'];
const ALLOCS = ['a0', 'a1'];
const FOLDERS = [
  { id: 'f0', show: 's0' },
  { id: 'f1', show: 's0' },
  { id: 'f2', show: 's1' },
];
const JOBS = [
  { id: 'j0', folder: 'f0' },
  { id: 'j1', folder: 'f0' },
  { id: 'j2', folder: 'f1' },
  { id: 'j3', folder: 'f2' },
].map((job) => ({ ...job, show: FOLDERS.find((f) => f.id === job.folder)!.show }));

interface Key {
  show: string;
  alloc: string;
  folder: string;
  job: string;
}
interface Proc extends Key {
  cores: number;
  gpus: number;
}
interface ModelBooking {
  handle: Booking;
  key: Key;
  cores: number;
  gpus: number;
  proc?: Proc;
  ended: boolean;
  /** Settled by lease expiry; a late confirm may still arrive. */
  expired?: boolean;
  recounted?: boolean;
}
type Notification = { kind: 'release'; proc: Proc } | { kind: 'fence'; pass: number };
interface Pass {
  id: number;
  epoch: number;
  /** A flip seed of this show; a recompute of every show when undefined. */
  show?: string;
  snapshot?: Snapshot;
  fenceQueued: boolean;
  fenceDelivered: boolean;
}

type Op =
  | { op: 'book'; job: number; alloc: number; cores: number; gpus: number }
  | { op: 'commitProc' | 'confirm' | 'rollback' | 'expire' | 'deleteProc' | 'lateConfirm'; pick: number }
  | { op: 'beginSeed'; show: number }
  | { op: 'deliver' | 'begin' | 'snapshot' | 'fence' | 'finish' };

const capsArb = fc.record({
  burst: fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 4, maxLength: 4 }),
  folderCores: fc.array(fc.integer({ min: -1, max: 15 }), { minLength: 3, maxLength: 3 }),
  folderGpus: fc.array(fc.integer({ min: -1, max: 4 }), { minLength: 3, maxLength: 3 }),
  jobCores: fc.array(fc.integer({ min: -1, max: 10 }), { minLength: 4, maxLength: 4 }),
  jobGpus: fc.array(fc.integer({ min: -1, max: 3 }), { minLength: 4, maxLength: 4 }),
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

/** Generous caps, so most bookings apply and the races have something to race on. */
const roomyCapsArb = fc.record({
  burst: fc.array(fc.integer({ min: 10, max: 30 }), { minLength: 4, maxLength: 4 }),
  folderCores: fc.array(fc.integer({ min: -1, max: 0 }), { minLength: 3, maxLength: 3 }),
  folderGpus: fc.array(fc.integer({ min: -1, max: 0 }), { minLength: 3, maxLength: 3 }),
  jobCores: fc.array(fc.integer({ min: -1, max: 0 }), { minLength: 4, maxLength: 4 }),
  jobGpus: fc.array(fc.integer({ min: -1, max: 0 }), { minLength: 4, maxLength: 4 }),
});

class Model {
  readonly store = new Store();
  readonly procs: Proc[] = [];
  readonly bookings: ModelBooking[] = [];
  readonly queue: Notification[] = [];
  pass: Pass | undefined;
  private passes = 0;
  readonly capRows: CapRows;

  constructor(readonly caps: Caps) {
    this.capRows = {
      subscriptions: SHOWS.flatMap((show, s) =>
        ALLOCS.map((alloc, a) => ({ show, alloc, burst: caps.burst[s * 2 + a]! })),
      ),
      folders: FOLDERS.map((f, i) => ({
        ...f,
        maxCores: caps.folderCores[i]!,
        maxGpus: caps.folderGpus[i]!,
      })),
      jobs: JOBS.map((j, i) => ({
        id: j.id,
        show: j.show,
        maxCores: caps.jobCores[i]!,
        maxGpus: caps.jobGpus[i]!,
      })),
    };
    // Caps in whole cores already: multiplier 1 keeps the numbers as written.
    this.store.setCaps({
      subscriptions: this.capRows.subscriptions.map((r) => ({
        show: r.show,
        alloc: r.alloc,
        burst: Number(r.burst),
      })),
      folders: this.capRows.folders.map((r) => ({
        ...r,
        maxCores: Number(r.maxCores),
        maxGpus: Number(r.maxGpus),
      })),
      jobs: this.capRows.jobs.map((r) => ({
        ...r,
        maxCores: Number(r.maxCores),
        maxGpus: Number(r.maxGpus),
      })),
    });
  }

  /** SUM(proc) + applied bookings whose proc row is not committed, for one vertex. */
  truth(match: (key: Key) => boolean): { cores: number; gpus: number } {
    const uncommitted = this.bookings
      .filter((b) => !b.ended && b.proc === undefined)
      .map((b) => ({ ...b.key, cores: b.cores, gpus: b.gpus }));
    return total([...this.procs, ...uncommitted], match);
  }

  sumProc(match: (key: Key) => boolean): { cores: number; gpus: number } {
    return total(this.procs, match);
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
        this.queue.push({ kind: 'release', proc: proc! });
        return;
      }
      case 'deliver':
        return this.deliver();
      case 'begin':
        if (!this.pass)
          this.pass = {
            id: ++this.passes,
            epoch: this.store.beginRecompute(),
            fenceQueued: false,
            fenceDelivered: false,
          };
        return;
      case 'beginSeed':
        if (!this.pass)
          this.pass = {
            id: ++this.passes,
            epoch: this.store.beginRecompute(),
            show: SHOWS[op.show]!,
            fenceQueued: false,
            fenceDelivered: false,
          };
        return;
      case 'snapshot':
        if (this.pass && !this.pass.snapshot) this.pass.snapshot = this.readSnapshot(this.pass.show);
        return;
      case 'fence':
        if (this.pass?.snapshot && !this.pass.fenceQueued) {
          this.pass.fenceQueued = true;
          this.queue.push({ kind: 'fence', pass: this.pass.id });
        }
        return;
      case 'finish':
        if (this.pass?.fenceDelivered) {
          if (this.pass.show === undefined)
            this.store.overwriteCounters(this.pass.snapshot!, this.pass.epoch);
          else this.store.seedShowBooked(this.pass.snapshot!, this.pass.epoch);
          this.pass = undefined;
        }
        return;
    }
  }

  private book(op: Extract<Op, { op: 'book' }>): void {
    const job = JOBS[op.job]!;
    const key: Key = { show: job.show, alloc: ALLOCS[op.alloc]!, folder: job.folder, job: job.id };
    const before = this.vertices().map((v) => ({ v, truth: this.truth(v.match) }));
    const outcome = this.store.book({ ...key, cores: op.cores, gpus: op.gpus });
    if (!(outcome instanceof Booking)) return;
    this.bookings.push({ handle: outcome, key, cores: op.cores, gpus: op.gpus, ended: false });
    // No applied booking may take the truth past an enforced cap.
    const sub = this.capRows.subscriptions.find((r) => r.show === key.show && r.alloc === key.alloc)!;
    const folder = this.capRows.folders.find((r) => r.id === key.folder)!;
    const jobCap = this.capRows.jobs.find((r) => r.id === key.job)!;
    const truthOf = (name: string) => before.find((x) => x.v.name === name)!.truth;
    if (op.cores > 0) {
      expect(truthOf(`sub ${key.show}/${key.alloc}`).cores + op.cores).toBeLessThanOrEqual(Number(sub.burst));
      if (Number(folder.maxCores) > 0) {
        expect(truthOf(`folder ${key.folder}`).cores + op.cores).toBeLessThanOrEqual(Number(folder.maxCores));
      }
      if (Number(jobCap.maxCores) > 0) {
        expect(truthOf(`job ${key.job}`).cores + op.cores).toBeLessThanOrEqual(Number(jobCap.maxCores));
      }
    }
    if (op.gpus > 0) {
      if (Number(folder.maxGpus) > 0) {
        expect(truthOf(`folder ${key.folder}`).gpus + op.gpus).toBeLessThanOrEqual(Number(folder.maxGpus));
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
      this.store.applyRelease({ ...note.proc, cores: -note.proc.cores, gpus: -note.proc.gpus });
    } else if (this.pass?.id === note.pass) {
      this.pass.fenceDelivered = true;
    }
  }

  /** SUM(proc) of every show, or of one show (a flip seed reads only its show). */
  readSnapshot(show?: string): Snapshot {
    const mine = <T extends { show: string }>(rows: T[]) =>
      show === undefined ? rows : rows.filter((row) => row.show === show);
    const rows: BookedRow[] = mine(this.procs).map((p) => ({ ...p }));
    const caps: CapRows = {
      subscriptions: mine(this.capRows.subscriptions),
      folders: mine(this.capRows.folders),
      jobs: mine(this.capRows.jobs),
    };
    return buildSnapshot(rows, caps, 1);
  }

  fullPass(): void {
    for (const op of ['begin', 'snapshot', 'fence'] as const) this.run({ op });
    while (this.pass && !this.pass.fenceDelivered) this.deliver();
    this.run({ op: 'finish' });
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
    }
    expect(this.store.inflightCount).toBe(this.bookings.filter((b) => !b.ended).length);
  }
}

function total(items: Proc[], match: (key: Key) => boolean): { cores: number; gpus: number } {
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

describe('Store invariant under random interleavings (fast-check)', () => {
  it('never reads below SUM(proc) + in-flight, never admits over a cap, and converges', () => {
    checkProperty(capsArb, fc.array(opArb, { maxLength: 250 }));
  });

  it('holds when flip seeds and late confirms race confirms (focused mix)', () => {
    // Long runs (fast-check's default size keeps arrays to about ten steps).
    checkProperty(roomyCapsArb, fc.array(flipArb, { minLength: 40, maxLength: 120 }), 200);
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

  it('would read below the truth if the overwrite did not wait for the fence (the model can fail)', () => {
    // Guards the test itself: skipping the fence must be caught by the invariant.
    const model = new Model({
      burst: [10, 10, 10, 10],
      folderCores: [-1, -1, -1],
      folderGpus: [-1, -1, -1],
      jobCores: [-1, -1, -1, -1],
      jobGpus: [-1, -1, -1, -1],
    });
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
});
