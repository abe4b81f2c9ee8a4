/**
 * Property-based test of the store against a model of the database (SPEC §1 invariant).
 *
 * The model holds the committed proc rows (the truth `SUM(proc)` reads), the NOTIFY queue
 * in commit order, and a recompute pass whose steps (begin, snapshot read, fence, overwrite)
 * interleave with everything else, as they do in the daemon. After every step:
 *   - no live counter is below SUM(proc) + applied bookings whose proc is not committed;
 *   - no applied booking took the truth past a cap.
 * After everything settles, the queue drains and two full passes run, every counter equals
 * SUM(proc) exactly.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildSnapshot, type BookedRow, type CapRows } from '../../src/core/boundary.js';
import { MAX_BOOKING_CORES, MAX_BOOKING_GPUS } from '../../src/core/booking-range.js';
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
}
type Notification = { kind: 'release'; proc: Proc } | { kind: 'fence'; pass: number };
interface Pass {
  id: number;
  epoch: number;
  snapshot?: Snapshot;
  fenceQueued: boolean;
  fenceDelivered: boolean;
}

type Op =
  | { op: 'book'; job: number; alloc: number; cores: number; gpus: number }
  | { op: 'commitProc' | 'confirm' | 'rollback' | 'expire' | 'deleteProc'; pick: number }
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

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      op: fc.constant('book' as const),
      job: fc.nat({ max: JOBS.length - 1 }),
      alloc: fc.nat({ max: ALLOCS.length - 1 }),
      cores: fc.integer({ min: 0, max: 5 }),
      gpus: fc.integer({ min: 0, max: 2 }),
    }),
  },
  ...(['commitProc', 'confirm', 'rollback', 'expire', 'deleteProc'] as const).map((op) => ({
    weight: op === 'expire' ? 1 : 4,
    arbitrary: fc.record({ op: fc.constant(op), pick: fc.nat() }),
  })),
  ...(['deliver', 'begin', 'snapshot', 'fence', 'finish'] as const).map((op) => ({
    weight: op === 'deliver' ? 6 : 2,
    arbitrary: fc.constant({ op }),
  })),
);

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
        if (b) this.end(b, this.store.confirm(b.handle));
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
      case 'snapshot':
        if (this.pass && !this.pass.snapshot) this.pass.snapshot = this.readSnapshot();
        return;
      case 'fence':
        if (this.pass?.snapshot && !this.pass.fenceQueued) {
          this.pass.fenceQueued = true;
          this.queue.push({ kind: 'fence', pass: this.pass.id });
        }
        return;
      case 'finish':
        if (this.pass?.fenceDelivered) {
          this.store.overwriteCounters(this.pass.snapshot!, this.pass.epoch);
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

  readSnapshot(): Snapshot {
    const rows: BookedRow[] = this.procs.map((p) => ({ ...p }));
    return buildSnapshot(rows, this.capRows, 1);
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
    assertNoNegativeCounter(this.store, step);
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
    fc.assert(
      fc.property(capsArb, fc.array(opArb, { maxLength: 250 }), (caps, ops) => {
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
      { numRuns: 400 },
    );
  });

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
