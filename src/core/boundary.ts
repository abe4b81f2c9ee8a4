/**
 * The PostgreSQL boundary: rows as the database returns them (centicores, sums as
 * bigint text) become store inputs (whole cores). This is the only place rows are
 * converted; the store never sees centicores.
 */
import type { CapSet, NodeTotals, Snapshot, SubscriptionTotals } from './types.js';
import { runToEnd, type Steps } from './steps.js';
import { bookedCoresFromCenticores, capCoresFromCenticores, type PgInteger } from './units.js';

/** `SUM(proc)` grouped by (show, alloc, folder, job), in centicores. */
export interface BookedRow {
  show: string;
  alloc: string;
  folder: string;
  job: string;
  cores: PgInteger;
  gpus: PgInteger;
}

/** The enforced caps as stored, in centicores. Their key sets are the zero-baseline. */
export interface CapRows {
  subscriptions: { show: string; alloc: string; burst: PgInteger }[];
  folders: { id: string; show: string; maxCores: PgInteger; maxGpus: PgInteger }[];
  /** `folder`: the job's folder (job.pk_folder) as read with its caps. */
  jobs: { id: string; show: string; folder: string; maxCores: PgInteger; maxGpus: PgInteger }[];
}

interface Sum {
  show: string;
  centicores: number;
  gpus: number;
  /** Jobs only: the folder the job's procs are summed under. */
  folder?: string;
}

/**
 * Build the snapshot the store overwrites from: every key of the cap rows starts at zero
 * (so a key that drained to no procs resets), booked sums are folded in centicores, and
 * each vertex is divided into whole cores once.
 */
export function buildSnapshot(booked: readonly BookedRow[], baseline: CapRows, multiplier: number): Snapshot {
  return runToEnd(snapshotSteps(booked, baseline, multiplier));
}

/** `buildSnapshot`, one step per row and per key (a farm is tens of thousands of each). */
export function* snapshotSteps(
  booked: readonly BookedRow[],
  baseline: CapRows,
  multiplier: number,
): Steps<Snapshot> {
  const subscriptions = new Map<string, Sum & { alloc: string }>();
  const folders = new Map<string, Sum>();
  const jobs = new Map<string, Sum>();
  for (const row of baseline.subscriptions) {
    subscriptions.set(subscriptionKey(row.show, row.alloc), {
      show: row.show,
      alloc: row.alloc,
      centicores: 0,
      gpus: 0,
    });
  }
  for (const row of baseline.folders) {
    folders.set(row.id, { show: row.show, centicores: 0, gpus: 0 });
    yield;
  }
  for (const row of baseline.jobs) {
    jobs.set(row.id, { show: row.show, centicores: 0, gpus: 0, folder: row.folder });
    yield;
  }

  for (const row of booked) {
    const centicores = Number(row.cores);
    const gpus = Number(row.gpus);
    const subKey = subscriptionKey(row.show, row.alloc);
    let sub = subscriptions.get(subKey);
    if (sub === undefined) {
      sub = { show: row.show, alloc: row.alloc, centicores: 0, gpus: 0 };
      subscriptions.set(subKey, sub);
    }
    sub.centicores += centicores;
    sub.gpus += gpus;
    addTo(folders, row.folder, row.show, centicores, gpus);
    addTo(jobs, row.job, row.show, centicores, gpus).folder = row.folder;
    yield;
  }

  return {
    subscriptions: [...subscriptions.values()].map((sum): SubscriptionTotals => ({
      show: sum.show,
      alloc: sum.alloc,
      cores: bookedCoresFromCenticores(sum.centicores, multiplier),
      gpus: sum.gpus,
    })),
    folders: yield* nodeTotals(folders, multiplier),
    jobs: yield* nodeTotals(jobs, multiplier),
  };
}

/** Caps in whole cores; negative sentinels stay -1 (unlimited), GPUs are never scaled. */
export function buildCapSet(rows: CapRows, multiplier: number): CapSet {
  const node = (row: CapRows['folders'][number]) => ({
    id: row.id,
    show: row.show,
    maxCores: capCoresFromCenticores(row.maxCores, multiplier),
    maxGpus: Number(row.maxGpus),
  });
  const job = (row: CapRows['jobs'][number]) => ({ ...node(row), folder: row.folder });
  return {
    subscriptions: rows.subscriptions.map((row) => ({
      show: row.show,
      alloc: row.alloc,
      burst: capCoresFromCenticores(row.burst, multiplier),
    })),
    folders: rows.folders.map(node),
    jobs: rows.jobs.map(job),
  };
}

function subscriptionKey(show: string, alloc: string): string {
  return `${show}\u0000${alloc}`;
}

function addTo(map: Map<string, Sum>, id: string, show: string, centicores: number, gpus: number): Sum {
  const sum = map.get(id);
  if (sum === undefined) {
    const created = { show, centicores, gpus };
    map.set(id, created);
    return created;
  }
  sum.centicores += centicores;
  sum.gpus += gpus;
  return sum;
}

function* nodeTotals(map: Map<string, Sum>, multiplier: number): Steps<NodeTotals[]> {
  const totals: NodeTotals[] = [];
  for (const [id, sum] of map) {
    const total: NodeTotals = {
      id,
      show: sum.show,
      cores: bookedCoresFromCenticores(sum.centicores, multiplier),
      gpus: sum.gpus,
    };
    if (sum.folder !== undefined) total.folder = sum.folder;
    totals.push(total);
    yield;
  }
  return totals;
}
