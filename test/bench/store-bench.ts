/**
 * In-process store benchmark at farm scale: 20 shows × 5 allocs, 2,000 folders, 20,000
 * jobs. Measures book+confirm pairs/s and releases/s over pre-generated requests, so the
 * number is the critical section and not the generator.
 */
import { Booking, Store } from '../../src/core/store.js';
import { LeaseBook } from '../../src/service/leases.js';
import { syntheticFarm } from './synthetic-farm.js';

export interface StoreBenchResult {
  pairsPerSecond: number;
  releasesPerSecond: number;
  rejectionsPerSecond: number;
  /** `LeaseBook.add` + `take` by id (the lease part of an HTTP book + confirm). */
  leasePairsPerSecond: number;
}

const REQUESTS = 1 << 16;

function timed(seconds: number, body: (round: number) => number): number {
  let operations = 0;
  let round = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < deadline) {
    operations += body(round++);
    now = process.hrtime.bigint();
  }
  return operations / (Number(now - start) / 1e9);
}

export function benchStore(seconds = 1.5): StoreBenchResult {
  const { caps, requests } = syntheticFarm(REQUESTS);
  const store = new Store();
  store.setCaps(caps);
  const mask = REQUESTS - 1;

  const pairs = (round: number): number => {
    const base = round * 4096;
    for (let i = 0; i < 4096; i++) {
      const outcome = store.book(requests[(base + i) & mask]!);
      if (outcome instanceof Booking) store.confirm(outcome);
    }
    return 4096;
  };
  timed(0.3, pairs); // warm up the JIT
  const pairsPerSecond = timed(seconds, pairs);

  const releases = requests.map((r) => ({ ...r, cores: -r.cores, gpus: -r.gpus }));
  const releasesPerSecond = timed(seconds, (round) => {
    const base = round * 4096;
    for (let i = 0; i < 4096; i++) store.applyRelease(releases[(base + i) & mask]!);
    return 4096;
  });

  const tight = new Store();
  tight.setCaps({ ...caps, subscriptions: caps.subscriptions.map((s) => ({ ...s, burst: 0 })) });
  const rejectionsPerSecond = timed(seconds, (round) => {
    const base = round * 4096;
    for (let i = 0; i < 4096; i++) tight.book(requests[(base + i) & mask]!);
    return 4096;
  });
  const leases = new LeaseBook(120_000);
  const ids: string[] = new Array<string>(4096);
  const booking = new Booking(
    store.job('job-0') as never,
    store.job('job-0') as never,
    store.job('job-0') as never,
    1,
    0,
  );
  const leasePairsPerSecond = timed(seconds, () => {
    for (let i = 0; i < 4096; i++) ids[i] = leases.add(booking, 0).id;
    for (let i = 0; i < 4096; i++) leases.take(ids[i]!);
    leases.sweep(0, () => undefined); // compacts the taken slots
    return 4096;
  });
  return { pairsPerSecond, releasesPerSecond, rejectionsPerSecond, leasePairsPerSecond };
}
