import { describe, expect, it } from 'vitest';
import { MAX_BOOKING_CORES, MAX_BOOKING_GPUS } from '../../src/core/booking-range.js';
import { Booking, Store } from '../../src/core/store.js';
import type { BookingRequest, CapSet, Snapshot } from '../../src/core/types.js';

const S = 'show-1';
const A = 'alloc-1';
const F = 'folder-1';
const J = 'job-1';

function request(cores: number, gpus = 0, overrides: Partial<BookingRequest> = {}): BookingRequest {
  return { show: S, alloc: A, folder: F, job: J, cores, gpus, ...overrides };
}

function caps(burst: number, folder: [number, number] = [-1, -1], job: [number, number] = [-1, -1]): CapSet {
  return {
    subscriptions: [{ show: S, alloc: A, burst }],
    folders: [{ id: F, show: S, maxCores: folder[0], maxGpus: folder[1] }],
    jobs: [{ id: J, show: S, maxCores: job[0], maxGpus: job[1] }],
  };
}

function snapshot(cores: number, gpus = 0): Snapshot {
  return {
    subscriptions: [{ show: S, alloc: A, cores, gpus }],
    folders: [{ id: F, show: S, cores, gpus }],
    jobs: [{ id: J, show: S, cores, gpus }],
  };
}

function applied(outcome: ReturnType<Store['book']>): Booking {
  if (!(outcome instanceof Booking)) throw new Error(`expected applied, got ${JSON.stringify(outcome)}`);
  return outcome;
}

function live(store: Store): [number, number, number] {
  return [store.subscription(S, A)?.cores ?? 0, store.folder(F)?.cores ?? 0, store.job(J)?.cores ?? 0];
}

describe('Store caps (SPEC §1 cap conventions)', () => {
  it('rejects every core booking on an unseeded subscription (fails closed)', () => {
    const store = new Store();
    expect(store.book(request(1))).toEqual({
      result: 'limit_exceeded',
      table: 'subscription',
      current: 0,
      limit: 0,
    });
    expect(store.count('subscription')).toBe(0);
  });

  it('rejects every core booking when burst is 0', () => {
    const store = new Store();
    store.setCaps(caps(0));
    expect(store.book(request(1))).toMatchObject({ table: 'subscription', current: 0, limit: 0 });
  });

  it('admits up to exactly the burst and rejects one core past it', () => {
    const store = new Store();
    store.setCaps(caps(10));
    applied(store.book(request(10)));
    expect(store.book(request(1))).toEqual({
      result: 'limit_exceeded',
      table: 'subscription',
      current: 10,
      limit: 10,
    });
  });

  it('treats folder and job caps <= 0 as unlimited', () => {
    for (const cap of [0, -1, -5]) {
      const store = new Store();
      store.setCaps(caps(1000, [cap, cap], [cap, cap]));
      applied(store.book(request(900, 900)));
    }
  });

  it('checks subscription, then folder, then job cores, then folder and job GPUs', () => {
    const store = new Store();
    store.setCaps(caps(10, [8, 3], [6, 2]));
    expect(store.book(request(11, 9))).toMatchObject({ table: 'subscription' });
    expect(store.book(request(9, 9))).toMatchObject({ table: 'folder', current: 0, limit: 8 });
    expect(store.book(request(7, 9))).toMatchObject({ table: 'job', current: 0, limit: 6 });
    expect(store.book(request(6, 4))).toMatchObject({ table: 'folder_gpus', current: 0, limit: 3 });
    expect(store.book(request(6, 3))).toMatchObject({ table: 'job_gpus', current: 0, limit: 2 });
    applied(store.book(request(6, 2)));
  });

  it('leaves no partial state when a later check rejects', () => {
    const store = new Store();
    store.setCaps(caps(10, [-1, -1], [2, -1]));
    expect(store.book(request(3))).toMatchObject({ table: 'job' });
    expect(live(store)).toEqual([0, 0, 0]);
    expect(store.inflightCount).toBe(0);
    expect(store.subscription(S, A)?.inflightCores).toBe(0);
  });

  it('skips every core check for a GPU-only booking', () => {
    const store = new Store(); // unseeded subscription: burst reads 0
    store.setCaps({ subscriptions: [], folders: [{ id: F, show: S, maxCores: 1, maxGpus: 4 }], jobs: [] });
    const booking = applied(store.book(request(0, 2)));
    expect(booking.gpus).toBe(2);
    expect(store.folder(F)?.gpus).toBe(2);
    expect(store.subscription(S, A)?.gpus).toBe(2);
  });

  it('rejects fractional or negative deltas as a programming error', () => {
    const store = new Store();
    expect(() => store.book(request(1.5))).toThrow(RangeError);
    expect(() => store.book(request(-1))).toThrow(RangeError);
  });

  it('refuses amounts past the booking range, so 2^53 − 1 GPUs can never round a counter below 0', () => {
    const store = new Store();
    store.setCaps(caps(100));
    expect(() => store.book(request(0, 2 ** 53 - 1))).toThrow(RangeError);
    expect(() => store.book(request(MAX_BOOKING_CORES + 1))).toThrow(RangeError);
    expect(() => store.book(request(0, MAX_BOOKING_GPUS + 1))).toThrow(RangeError);
    expect([store.job(J)!.gpus, store.inflightCount]).toEqual([0, 0]); // nothing changed
    // The sequence within the range: book, book, book, roll all back, recompute.
    const bookings = [MAX_BOOKING_GPUS, 1, 1].map((gpus) => applied(store.book(request(0, gpus))));
    for (const booking of bookings) store.rollback(booking);
    store.overwriteCounters(
      { subscriptions: [], folders: [], jobs: [{ id: J, show: S, cores: 0, gpus: 0 }] },
      store.beginRecompute(),
    );
    const job = store.job(J)!;
    expect([job.gpus, job.inflightGpus, job.settledGpus(0), job.settledGpus(1)]).toEqual([0, 0, 0, 0]);
  });
});

describe('Store booking lifecycle', () => {
  it('confirm keeps the live counter and moves the delta to settled', () => {
    const store = new Store();
    store.setCaps(caps(100));
    const booking = applied(store.book(request(4, 1)));
    expect(store.job(J)?.inflightCores).toBe(4);
    expect(store.confirm(booking)).toBe(true);
    expect(live(store)).toEqual([4, 4, 4]);
    expect(store.job(J)?.inflightCores).toBe(0);
    expect(store.job(J)?.settledCores((store.epoch & 1) as 0 | 1)).toBe(4);
    expect(store.inflightCount).toBe(0);
  });

  it('rollback restores the live counter and the in-flight part', () => {
    const store = new Store();
    store.setCaps(caps(100));
    const booking = applied(store.book(request(4, 1)));
    expect(store.rollback(booking)).toBe(true);
    expect(live(store)).toEqual([0, 0, 0]);
    expect(store.job(J)?.gpus).toBe(0);
    expect(store.job(J)?.inflightCores).toBe(0);
  });

  it('ends each booking exactly once', () => {
    const store = new Store();
    store.setCaps(caps(100));
    const booking = applied(store.book(request(4)));
    expect(store.confirm(booking)).toBe(true);
    expect(store.confirm(booking)).toBe(false);
    expect(store.rollback(booking)).toBe(false);
    expect(live(store)).toEqual([4, 4, 4]);
  });

  it('applies a release to known keys and changes nothing for unknown keys', () => {
    const store = new Store();
    store.setCaps(caps(100));
    store.confirm(applied(store.book(request(10, 2))));
    store.applyRelease({ show: S, alloc: A, folder: F, job: J, cores: -4, gpus: -1 });
    expect(live(store)).toEqual([6, 6, 6]);
    store.applyRelease({ show: 'other', alloc: 'other', folder: 'other', job: 'other', cores: -4, gpus: -1 });
    expect(live(store)).toEqual([6, 6, 6]);
    expect(store.count('job')).toBe(1);
    expect(store.job('other')).toBeUndefined();
  });

  it('never lets a release drive a counter below zero', () => {
    const store = new Store();
    store.setCaps(caps(100));
    store.applyRelease({ show: S, alloc: A, folder: F, job: J, cores: -4, gpus: -1 });
    expect(live(store)).toEqual([0, 0, 0]);
  });
});

describe('Store limit changes', () => {
  it('a single-field change on an unseen folder or job leaves the other field unlimited', () => {
    const store = new Store();
    store.applyLimitChange({ vertex: 'folder', id: 'f-new', field: 'max_cores', value: 20 });
    store.applyLimitChange({ vertex: 'job', id: 'j-new', field: 'max_gpus', value: 2 });
    expect(store.folder('f-new')).toMatchObject({ maxCores: 20, maxGpus: -1 });
    expect(store.job('j-new')).toMatchObject({ maxCores: -1, maxGpus: 2 });
  });

  it('a cap decrease is enforced at once', () => {
    const store = new Store();
    store.setCaps(caps(100, [-1, -1], [50, -1]));
    applied(store.book(request(10)));
    store.applyLimitChange({ vertex: 'job', id: J, field: 'max_cores', value: 10 });
    expect(store.book(request(1))).toMatchObject({ table: 'job', current: 10, limit: 10 });
    store.applyLimitChange({ vertex: 'sub', show: S, alloc: A, burst: 5 });
    expect(store.book(request(1))).toMatchObject({ table: 'subscription', current: 10, limit: 5 });
  });

  it('setCaps with authoritative shows fails closed on a subscription that lost its row', () => {
    const store = new Store();
    store.setCaps(caps(100));
    store.setCaps({ subscriptions: [], folders: [], jobs: [] }, { authoritativeShows: new Set([S]) });
    expect(store.subscription(S, A)?.maxCores).toBe(0);
  });

  it('setCaps onlyUnseeded fills new vertices and leaves seeded ones alone', () => {
    const store = new Store();
    store.setCaps(caps(100, [10, 1], [10, 1]));
    store.applyLimitChange({ vertex: 'job', id: J, field: 'max_cores', value: 5 });
    store.setCaps(
      {
        ...caps(100, [10, 1], [10, 1]),
        jobs: [...caps(0).jobs, { id: 'j2', show: S, maxCores: 7, maxGpus: 1 }],
      },
      { onlyUnseeded: true },
    );
    expect(store.job(J)?.maxCores).toBe(5);
    expect(store.job('j2')).toMatchObject({ maxCores: 7, maxGpus: 1 });
  });
});

describe('Store recompute', () => {
  it('overwrites live counters from the snapshot and reports the drift', () => {
    const store = new Store();
    store.setCaps(caps(100));
    store.confirm(applied(store.book(request(10))));
    const epoch = store.beginRecompute();
    const drift = store.overwriteCounters(snapshot(7), epoch);
    expect(live(store)).toEqual([7, 7, 7]);
    expect(drift.job).toEqual({ cores: 3, gpus: 0, keys: 1 });
  });

  it('resets a drained key to 0 via the zero-baseline', () => {
    const store = new Store();
    store.setCaps(caps(100));
    store.confirm(applied(store.book(request(10))));
    store.overwriteCounters(snapshot(0), store.beginRecompute());
    expect(live(store)).toEqual([0, 0, 0]);
  });

  it('keeps a subscription missing from the snapshot, forgets an idle folder and job (issue 11 item 9)', () => {
    const store = new Store();
    store.setCaps(caps(100));
    store.confirm(applied(store.book(request(10))));
    store.overwriteCounters({ subscriptions: [], folders: [], jobs: [] }, store.beginRecompute());
    expect(live(store)).toEqual([10, 0, 0]);
    expect([store.count('folder'), store.count('job')]).toEqual([0, 0]);
  });

  it('keeps a job missing from the snapshot while it holds a booking the snapshot may not have seen', () => {
    const store = new Store();
    store.setCaps(caps(100));
    const epoch = store.beginRecompute();
    const inflight = applied(store.book(request(3)));
    store.overwriteCounters({ subscriptions: [], folders: [], jobs: [] }, epoch);
    expect(live(store)).toEqual([3, 3, 3]);
    // Confirmed while the next pass reads: settled in the carried bucket, so that pass keeps
    // the job; the pass after it has certainly seen the proc (or its absence) and forgets it.
    const next = store.beginRecompute();
    store.confirm(inflight);
    store.overwriteCounters({ subscriptions: [], folders: [], jobs: [] }, next);
    expect(store.count('job')).toBe(1);
    store.overwriteCounters({ subscriptions: [], folders: [], jobs: [] }, store.beginRecompute());
    expect([store.count('folder'), store.count('job')]).toEqual([0, 0]);
  });

  it("bookIfKnown books only when all keys have caps and the path is the job's; otherwise changes nothing", () => {
    const store = new Store();
    expect(store.bookIfKnown(request(1))).toBeUndefined();
    store.setCaps({ ...caps(100), jobs: [{ id: J, show: S, folder: F, maxCores: 3, maxGpus: -1 }] });
    expect(store.bookIfKnown(request(1, 0, { folder: 'folder-2' }))).toBeUndefined();
    expect(store.bookIfKnown(request(1, 0, { show: 'show-2' }))).toBeUndefined();
    expect(store.bookIfKnown(request(1, 0, { alloc: 'alloc-2' }))).toBeUndefined();
    expect(store.bookIfKnown(request(1, 0, { job: 'job-2' }))).toBeUndefined();
    expect([store.count('folder'), store.count('job'), store.inflightCount]).toEqual([1, 1, 0]);
    expect(store.bookIfKnown(request(4))).toMatchObject({ result: 'limit_exceeded', table: 'job' });
    applied(store.bookIfKnown(request(3))!);
    expect(live(store)).toEqual([3, 3, 3]);
  });

  it('moves a job with its live, in-flight and settled usage to its new folder (issue 11 item 4)', () => {
    const store = new Store();
    const F2 = 'folder-2';
    store.setCaps({
      ...caps(100),
      folders: [...caps(100).folders, { id: F2, show: S, maxCores: 10, maxGpus: -1 }],
    });
    store.confirm(applied(store.book(request(4))));
    const inflight = applied(store.book(request(2)));
    applied(store.book(request(1, 0, { job: 'job-other' })));
    expect(store.moveJob(J, F2)).toBe(true);
    expect(store.folder(F)!.cores).toBe(1);
    expect(store.folder(F2)!).toMatchObject({ cores: 6, inflightCores: 2 });
    expect(store.folder(F2)!.settledCores(0)).toBe(4);
    expect(store.job(J)!.folderId).toBe(F2);
    // The in-flight booking now settles in the new folder; the old one is untouched.
    store.rollback(inflight);
    expect([store.folder(F)!.cores, store.folder(F2)!.cores, store.folder(F2)!.inflightCores]).toEqual([
      1, 4, 0,
    ]);
    expect(store.moveJob(J, F2)).toBe(false);
  });

  it("an overwrite from a snapshot older than a move shifts the job's sum to its new folder", () => {
    const store = new Store();
    const F2 = 'folder-2';
    store.setCaps(caps(100));
    const epoch = store.beginRecompute();
    store.moveJob(J, F2); // re-resolved after the read began
    store.overwriteCounters(
      {
        subscriptions: [{ show: S, alloc: A, cores: 5, gpus: 0 }],
        folders: [{ id: F, show: S, cores: 5, gpus: 0 }],
        jobs: [{ id: J, show: S, cores: 5, gpus: 0, folder: F }],
      },
      epoch,
    );
    expect([store.folder(F)!.cores, store.folder(F2)!.cores]).toEqual([0, 5]);
  });

  it('keeps an in-flight booking made after beginRecompute whose proc the snapshot missed', () => {
    const store = new Store();
    store.setCaps(caps(100));
    const epoch = store.beginRecompute();
    applied(store.book(request(5)));
    store.overwriteCounters(snapshot(0), epoch);
    expect(live(store)).toEqual([5, 5, 5]);
  });

  it('keeps a booking confirmed after beginRecompute whose proc the snapshot missed', () => {
    const store = new Store();
    store.setCaps(caps(100));
    const booking = applied(store.book(request(5)));
    const epoch = store.beginRecompute();
    store.confirm(booking); // raced the snapshot read: the snapshot did not see the proc
    store.overwriteCounters(snapshot(0), epoch);
    expect(live(store)).toEqual([5, 5, 5]);
    // The next pass sees the proc, and no longer carries the settled part.
    store.overwriteCounters(snapshot(5), store.beginRecompute());
    expect(live(store)).toEqual([5, 5, 5]);
  });

  it('does not double count a confirm from before beginRecompute', () => {
    const store = new Store();
    store.setCaps(caps(100));
    store.confirm(applied(store.book(request(5))));
    store.overwriteCounters(snapshot(5), store.beginRecompute());
    expect(live(store)).toEqual([5, 5, 5]);
    store.overwriteCounters(snapshot(5), store.beginRecompute());
    expect(live(store)).toEqual([5, 5, 5]);
  });

  it('refuses an overwrite from a pass that is not the latest (overlapping passes)', () => {
    const store = new Store();
    const first = store.beginRecompute();
    store.beginRecompute();
    expect(() => store.overwriteCounters(snapshot(0), first)).toThrow(/epoch/);
  });

  it('seedShowBooked sets counters from the snapshot like an overwrite of the seeded keys', () => {
    const store = new Store();
    store.setCaps(caps(100));
    store.confirm(applied(store.book(request(9))));
    const epoch = store.beginRecompute();
    store.seedShowBooked(snapshot(3), epoch);
    expect(live(store)).toEqual([3, 3, 3]);
    // The confirm from before the seed's read was seen by it: not carried again.
    const next = store.beginRecompute();
    store.overwriteCounters(snapshot(3), next);
    expect(live(store)).toEqual([3, 3, 3]);
  });

  it('seedShowBooked carries a confirm that lands while the seed snapshot is read (flip back within a lease)', () => {
    const store = new Store();
    store.setCaps(caps(10));
    const inFlight = applied(store.book(request(6))); // booked before the show flipped away
    const epoch = store.beginRecompute(); // the flip seed starts
    // The snapshot is read before the proc commits; the client confirms before the seed applies.
    store.confirm(inFlight);
    store.seedShowBooked(snapshot(0), epoch);
    expect(live(store)).toEqual([6, 6, 6]);
    expect(store.book(request(5)).result).toBe('limit_exceeded');
    // The next recompute's snapshot sees the proc: exact, and the carried bucket is dropped.
    store.overwriteCounters(snapshot(6), store.beginRecompute());
    store.overwriteCounters(snapshot(6), store.beginRecompute());
    expect(live(store)).toEqual([6, 6, 6]);
  });

  it('seedShowBooked keeps a booking still in flight on top of the snapshot', () => {
    const store = new Store();
    store.setCaps(caps(10));
    applied(store.book(request(4)));
    store.seedShowBooked(snapshot(2), store.beginRecompute());
    expect(live(store)).toEqual([6, 6, 6]);
  });

  it('seedShowBooked refuses an epoch that is not the latest (a seed interleaved with a recompute)', () => {
    const store = new Store();
    const seedEpoch = store.beginRecompute();
    store.beginRecompute();
    expect(() => store.seedShowBooked(snapshot(0), seedEpoch)).toThrow(/epoch/);
  });
});

describe('Store late confirms (a client confirming after its lease expired)', () => {
  it('recountLate counts an expired booking again so a recompute that dropped it cannot hide a late proc', () => {
    const store = new Store();
    store.setCaps(caps(10));
    const late = applied(store.book(request(6)));
    store.confirm(late); // the lease expired: settled as a confirm, no proc yet
    store.overwriteCounters(snapshot(0), store.beginRecompute());
    store.overwriteCounters(snapshot(0), store.beginRecompute()); // dropped: no proc seen
    expect(live(store)).toEqual([0, 0, 0]);
    // A recompute begins and reads before the slow client's late insert commits...
    const racing = store.beginRecompute();
    // ...the client inserts its proc and confirms late, before that recompute overwrites.
    expect(store.recountLate(late)).toBe(true);
    expect(live(store)).toEqual([6, 6, 6]);
    expect(store.book(request(5)).result).toBe('limit_exceeded');
    store.overwriteCounters(snapshot(0), racing); // its snapshot missed the proc: carried
    expect(live(store)).toEqual([6, 6, 6]);
    store.overwriteCounters(snapshot(6), store.beginRecompute());
    expect(live(store)).toEqual([6, 6, 6]);
  });

  it('recountLate only applies once, and only to a booking settled by expiry', () => {
    const store = new Store();
    store.setCaps(caps(10));
    const inFlight = applied(store.book(request(2)));
    expect(store.recountLate(inFlight)).toBe(false);
    store.confirm(inFlight);
    expect(store.recountLate(inFlight)).toBe(true);
    expect(store.recountLate(inFlight)).toBe(false);
    expect(live(store)).toEqual([4, 4, 4]); // an over-count until the next recompute, never an under-count
    const rolledBack = applied(store.book(request(1)));
    store.rollback(rolledBack);
    expect(store.recountLate(rolledBack)).toBe(false);
  });
});

describe('Store refusal counters (per vertex, by table)', () => {
  function refusals(store: Store) {
    const v = (x: { refusedCores: number; refusedGpus: number } | undefined) => [
      x?.refusedCores ?? 0,
      x?.refusedGpus ?? 0,
    ];
    return { sub: v(store.subscription(S, A)), folder: v(store.folder(F)), job: v(store.job(J)) };
  }

  it('counts each refusal once, on the vertex and table that refused, and never an applied booking', () => {
    const store = new Store();
    store.setCaps(caps(10, [8, 2], [6, 1]));
    applied(store.book(request(5, 1)));
    expect(refusals(store)).toEqual({ sub: [0, 0], folder: [0, 0], job: [0, 0] });
    // Job cores: 5 + 2 > 6 (folder 7 <= 8, subscription 7 <= 10 pass first).
    expect(store.book(request(2))).toMatchObject({ table: 'job' });
    // Folder cores: 5 + 4 > 8, before the job is looked at.
    expect(store.book(request(4))).toMatchObject({ table: 'folder' });
    // Subscription: 5 + 6 > 10, before folder and job.
    expect(store.book(request(6))).toMatchObject({ table: 'subscription' });
    expect(store.book(request(6))).toMatchObject({ table: 'subscription' });
    // GPUs: job 1 + 1 > 1 (folder 2 <= 2 passes).
    expect(store.book(request(0, 1))).toMatchObject({ table: 'job_gpus' });
    // Folder GPUs: 1 + 2 > 2.
    expect(store.book(request(0, 2))).toMatchObject({ table: 'folder_gpus' });
    expect(refusals(store)).toEqual({ sub: [2, 0], folder: [1, 1], job: [1, 1] });
    // A refusal changes no booked counter.
    expect(live(store)).toEqual([5, 5, 5]);
  });

  it('counts a closed subscription (burst 0) and leaves an unknown subscription uncounted (no vertex is created)', () => {
    const store = new Store();
    store.setCaps(caps(0));
    expect(store.book(request(1))).toMatchObject({ table: 'subscription' });
    expect(store.subscription(S, A)?.refusedCores).toBe(1);
    expect(store.book(request(1, 0, { alloc: 'unknown' }))).toMatchObject({ table: 'subscription' });
    expect(store.subscription(S, 'unknown')).toBeUndefined();
  });
});
