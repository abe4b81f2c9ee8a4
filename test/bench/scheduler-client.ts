/**
 * One benchmark scheduler process (forked by clients-bench.ts): an {@link AccountingClient}
 * with `concurrency` booking loops, each awaiting its booking before the next, counted from
 * `startAt` for `seconds` (the loops run, uncounted, from process start: the warm-up).
 * Reports bookings, p50/p99 latency per booking (call → answer) and how many batches
 * carried them.
 */
import { performance } from 'node:perf_hooks';
import { AccountingClient } from '../../src/client/index.js';
import type { BookingRequest } from '../../src/core/types.js';

export interface SchedulerClientInput {
  url: string;
  requests: BookingRequest[];
  concurrency: number;
  seconds: number;
  /** Epoch ms at which every client starts, so the processes overlap. */
  startAt: number;
  offset: number;
}

export interface SchedulerClientResult {
  bookings: number;
  applied: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  batches: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function run(input: SchedulerClientInput): Promise<SchedulerClientResult> {
  const client = new AccountingClient({ url: input.url, timeoutMs: 60_000 });
  // The loops run from the moment the process is up; only bookings made inside the window
  // [startAt, startAt + seconds) count. So the JIT and the connections are warm, and every
  // process is already busy, when the clock starts (a cold process books several times slower).
  const start = Math.max(input.startAt - performance.timeOrigin, performance.now());
  const end = start + input.seconds * 1000;
  let batchesAtStart = 0;
  setTimeout(() => (batchesAtStart = client.stats.batches), start - performance.now());
  const latencies: number[] = [];
  let applied = 0;
  let lastAnswer = start;
  let next = input.offset;
  async function loop(): Promise<void> {
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) return;
      const request = input.requests[next++ % input.requests.length]!;
      const answer = await client.book(request);
      if (t0 < start) continue;
      lastAnswer = performance.now();
      latencies.push(lastAnswer - t0);
      if (answer.result === 'applied') applied++;
    }
  }
  await Promise.all(Array.from({ length: input.concurrency }, loop));
  const seconds = (lastAnswer - start) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  client.close();
  return {
    bookings: latencies.length,
    applied,
    seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
    batches: client.stats.batches - batchesAtStart,
  };
}

process.once('message', (input: SchedulerClientInput) => {
  run(input).then(
    (result) => process.send!(result, () => process.exit(0)),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
});
