/**
 * Release NOTIFY → applied in the store (SPEC §4: ≥ 10,000/s sustained, p99 commit-to-applied
 * < 50 ms).
 *
 * The accounting service runs in process on this thread (bootstrapped from its own bench
 * farm, where every proc has its own job); a worker thread plays Cuebot, releasing procs in
 * transactions of 100 (DELETE + one `acct_release` per proc, COMMIT). The moment a release is
 * applied is taken inside the store (its `applyRelease`, wrapped); the commit time is when the
 * producer sent COMMIT — an upper bound on the latency, since the commit itself (WAL flush)
 * is inside the measured interval. Releases are matched by job id, unique per proc.
 *
 * After a warm-up of 5,000 releases, two runs: paced at the target rate (the latency under
 * the sustained load of the target), then as fast as the producer goes (the rate the path
 * sustains). The farm needs 5,000 + 2 × 30,000 procs.
 */
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Sql } from 'postgres';
import type { ReleaseDelta } from '../../src/core/types.js';
import { startService } from '../support/service.js';
import type { ProducerInput, ProducerOutput } from './release-producer.js';

export interface ReleaseRun {
  /** Releases applied per second, from the first BEGIN to the last application. */
  appliedPerSecond: number;
  /** What the producer committed per second. */
  committedPerSecond: number;
  /** COMMIT sent → applied (an upper bound of commit-to-applied). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** COMMIT acknowledged → applied (a lower bound; negative when applied before the client heard the ack). */
  ackP50Ms: number;
  ackP99Ms: number;
  /** The COMMIT round trip itself (WAL flush included). */
  commitP50Ms: number;
  commitP99Ms: number;
  released: number;
  applied: number;
}

export interface ReleaseBenchResult {
  paced: ReleaseRun;
  max: ReleaseRun;
  targetRate: number;
}

const now = () => performance.timeOrigin + performance.now();

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? Number.NaN;
}

async function produce(input: ProducerInput): Promise<ProducerOutput> {
  const worker = new Worker(new URL('./release-producer.js', import.meta.url), { workerData: input });
  const [message] = (await once(worker, 'message')) as [
    { ok: boolean; output?: ProducerOutput; error?: string },
  ];
  await worker.terminate();
  if (!message.ok) throw new Error(`release producer failed: ${message.error}`);
  return message.output!;
}

/** Proc ids in transactions of `size`, each job once per transaction (one proc per job here). */
async function transactions(sql: Sql, count: number, size: number, offset: number): Promise<string[][]> {
  const rows = await sql<
    { id: string }[]
  >`SELECT pk_proc AS id FROM proc ORDER BY pk_proc OFFSET ${offset} LIMIT ${count}`;
  const out: string[][] = [];
  for (let i = 0; i < rows.length; i += size) out.push(rows.slice(i, i + size).map((r) => r.id));
  return out;
}

/** `url`: a database holding a farm whose procs each have their own job (see run.ts). */
export async function benchReleases(
  url: string,
  sql: Sql,
  options: { targetRate?: number; pacedSeconds?: number; maxReleases?: number } = {},
): Promise<ReleaseBenchResult> {
  const targetRate = options.targetRate ?? 10_000;
  const pacedCount = Math.round(targetRate * (options.pacedSeconds ?? 3));
  const maxCount = options.maxReleases ?? 30_000;
  const running = await startService(url);
  // The service catches up with a recompute as soon as its listener is up (releases between the
  // bootstrap read and LISTEN); at farm scale that pass holds the event loop for a while. Measure
  // the steady state, not that catch-up: wait for it to finish.
  const deadline = Date.now() + 60_000;
  while (running.service.status().last_recompute.at === null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const applied = new Map<string, number>();
  const store = running.service.store;
  const original = store.applyRelease.bind(store);
  store.applyRelease = (delta: ReleaseDelta) => {
    const result = original(delta);
    applied.set(delta.job, now());
    return result;
  };
  try {
    const run = async (
      count: number,
      offset: number,
      rate: number,
      connections: number,
    ): Promise<ReleaseRun> => {
      applied.clear();
      const txs = await transactions(sql, count, 100, offset);
      if (txs.length === 0) throw new Error('the release farm has no procs left');
      const out = await produce({ url, transactions: txs, rate, connections });
      const deadline = Date.now() + 30_000;
      while (applied.size < out.jobs.length && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      const latencies = new Float64Array(out.jobs.length);
      const fromAck = new Float64Array(out.jobs.length);
      const commits = new Float64Array(out.jobs.length);
      let n = 0;
      let last = 0;
      out.jobs.forEach((job, i) => {
        const at = applied.get(job);
        if (at === undefined) return;
        latencies[n] = at - out.commitSentAt[i]!;
        fromAck[n] = at - out.commitAckAt[i]!;
        commits[n] = out.commitAckAt[i]! - out.commitSentAt[i]!;
        n++;
        last = Math.max(last, at);
      });
      const sorted = latencies.subarray(0, n).sort();
      const ackSorted = fromAck.subarray(0, n).sort();
      const commitSorted = commits.subarray(0, n).sort();
      return {
        ackP50Ms: percentile(ackSorted, 0.5),
        ackP99Ms: percentile(ackSorted, 0.99),
        commitP50Ms: percentile(commitSorted, 0.5),
        commitP99Ms: percentile(commitSorted, 0.99),
        appliedPerSecond: n / ((last - out.startedAt) / 1000),
        committedPerSecond: out.jobs.length / ((out.endedAt - out.startedAt) / 1000),
        p50Ms: percentile(sorted, 0.5),
        p99Ms: percentile(sorted, 0.99),
        maxMs: percentile(sorted, 1),
        released: out.jobs.length,
        applied: n,
      };
    };
    // Warm up (JIT of the parse and apply path, connections, the fresh store): not measured.
    await run(5_000, 0, 0, 2);
    const paced = await run(pacedCount, 0, targetRate, 2);
    // The paced run deleted its procs: the next ones start at offset 0 again.
    const max = await run(maxCount, 0, 0, 3);
    return { paced, max, targetRate };
  } finally {
    await running.stop();
  }
}
