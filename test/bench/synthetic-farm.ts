/**
 * The in-memory farm the store and HTTP benchmarks book against: 20 shows × 5 allocs, 2,000
 * folders, 20,000 jobs, caps high enough that every booking applies (job caps are set, so
 * the cap checks run). Ids are built by concatenation at runtime, like ids parsed from
 * JSON: not interned literals.
 */
import type { BookingRequest, CapSet } from '../../src/core/types.js';

const SHOWS = 20;
const ALLOCS = 5;
const FOLDERS = 2_000;
const JOBS = 20_000;
const HIGH = 1e12;

export interface SyntheticFarm {
  caps: CapSet;
  requests: BookingRequest[];
  /** Show ids to publish as managed. */
  shows: string[];
}

export function syntheticFarm(requestCount: number): SyntheticFarm {
  const caps: CapSet = { subscriptions: [], folders: [], jobs: [] };
  const shows = Array.from({ length: SHOWS }, (_, s) => `show-${s}`);
  for (const show of shows) {
    for (let a = 0; a < ALLOCS; a++) caps.subscriptions.push({ show, alloc: `alloc-${a}`, burst: HIGH });
  }
  for (let f = 0; f < FOLDERS; f++) {
    caps.folders.push({ id: `folder-${f}`, show: `show-${f % SHOWS}`, maxCores: -1, maxGpus: -1 });
  }
  for (let j = 0; j < JOBS; j++) {
    caps.jobs.push({ id: `job-${j}`, show: `show-${(j % FOLDERS) % SHOWS}`, maxCores: HIGH, maxGpus: -1 });
  }
  const requests: BookingRequest[] = [];
  for (let i = 0; i < requestCount; i++) {
    const job = (i * 7919) % JOBS;
    const folder = job % FOLDERS;
    requests.push({
      show: `show-${folder % SHOWS}`,
      alloc: `alloc-${i % ALLOCS}`,
      folder: `folder-${folder}`,
      job: `job-${job}`,
      cores: 1 + (i % 8),
      gpus: i % 4 === 0 ? 1 : 0,
    });
  }
  return { caps, requests, shows };
}
