/**
 * No booking waits behind a recompute (issue 14): on a farm of thousands of keys, the pass's
 * in-memory part runs in steps and bookings are answered between them. Counted, not timed: a
 * booking is attempted on every turn of the event loop while the overwrite is open, and with
 * the overwrite done in one go no turn ever sees it open.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Steps } from '../../src/core/steps.js';
import type { DriftReport, Snapshot } from '../../src/core/types.js';
import { createFarm, type FarmIds, type FarmSpec } from '../../src/db/fixtures.js';
import { nextTurn } from '../../src/service/event-loop.js';
import { farmRequests } from '../bench/farm-bench.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { startService, type RunningService } from '../support/service.js';

/** 2 shows × 2 allocs; 40 folders; 4,000 jobs; 8,000 procs: big enough for many steps. */
const FARM: FarmSpec = {
  shows: 2,
  allocs: 2,
  foldersPerShow: 20,
  jobsPerFolder: 100,
  hostsPerAlloc: 10,
  procs: 8_000,
  burstCenticores: 1_000_000_000,
  jobMaxCoresCenticores: -1,
  jobMaxGpus: -1,
};

let db: TestDatabase;
let ids: FarmIds;
let running: RunningService;

beforeAll(async () => {
  db = await createTestDatabase();
  ids = await createFarm(db.sql, FARM);
  // Yield every few steps whatever the machine speed, so the count does not depend on it.
  running = await startService(db.url, { sliceMs: 0 });
}, 60_000);
afterAll(async () => {
  await running?.stop();
  await db?.drop();
});

/** The steps, reporting when they are done (also when they throw). */
function* watched<T>(steps: Steps<T>, done: () => void): Steps<T> {
  try {
    return yield* steps;
  } finally {
    done();
  }
}

describe('a recompute shares the event loop with bookings', () => {
  it('answers bookings between the steps of the overwrite, and the counters come out exact', async () => {
    const store = running.service.store;
    await running.service.recompute(); // the catch-up pass: steady state from here
    let open = false;
    const beginOverwrite = store.beginOverwrite.bind(store);
    store.beginOverwrite = (snapshot: Snapshot, epoch: number): Steps<DriftReport> => {
      open = true;
      return watched(beginOverwrite(snapshot, epoch), () => (open = false));
    };
    const requests = farmRequests(ids, FARM, 512);
    const sub = (i: number) => store.subscription(requests[i]!.show, requests[i]!.alloc)!;
    const before = sub(0).cores;
    let attempted = 0;
    let appliedDuring = 0;
    let appliedToFirstSub = 0;
    let passDone = false;
    const pass = running.service.recompute().finally(() => (passDone = true));
    await new Promise<void>((resolve) => {
      const turn = () => {
        if (passDone) return resolve();
        if (open) {
          const i = attempted++ % requests.length;
          const answer = running.service.book(requests[i]!);
          expect(answer).not.toBeInstanceOf(Promise); // every key known: the synchronous path
          if ('booking' in answer) {
            appliedDuring++;
            if (requests[i]!.show === requests[0]!.show && requests[i]!.alloc === requests[0]!.alloc)
              appliedToFirstSub++;
          }
        }
        setImmediate(turn);
      };
      setImmediate(turn);
    });
    await pass;
    store.beginOverwrite = beginOverwrite;
    expect(appliedDuring).toBeGreaterThan(10);
    // In flight (never confirmed): the overwrite kept every one of them, wherever it landed.
    expect(sub(0).cores).toBe(before + appliedToFirstSub);
    expect(sub(0).inflightCores).toBe(appliedToFirstSub);
  }, 60_000);

  it("walks the refusal history's vertices in slices too, and the tick still samples every vertex in trouble", async () => {
    const vertices = running.service.counts();
    expect(vertices.job).toBeGreaterThan(1_000);
    // A job over 90 % of its cap is tracked: the walk reached it wherever it sits.
    const request = farmRequests(ids, FARM, 1)[0]!;
    const job = running.service.store.job(request.job)!;
    running.service.store.applyLimitChange({
      vertex: 'job',
      id: request.job,
      field: 'max_cores',
      value: job.cores + 1,
    });
    expect(running.service.book({ ...request, cores: 1 })).toMatchObject({ result: 'applied' });
    let done = false;
    const tick = running.service.tickHistory().then(() => (done = true));
    let turns = 0;
    while (!done) {
      await nextTurn();
      turns++;
    }
    await tick;
    expect(turns).toBeGreaterThan(10);
    expect(running.service.refusalHistory.history(job).at(-1)?.utilization).toBe(1);
  }, 60_000);
});
