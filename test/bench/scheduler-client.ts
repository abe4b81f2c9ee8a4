/**
 * One benchmark scheduler process (forked by clients-bench.ts): an {@link AccountingClient}
 * with `concurrency` booking loops, each awaiting its booking before the next, from `startAt`
 * for `seconds`. Reports bookings, p50/p99 latency per booking (call → answer) and how many
 * batches carried them.
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
  // Warm the connection and the JIT before the clock starts.
  for (let i = 0; i < 200; i++) await client.book(input.requests[i % input.requests.length]!);
  const wait = input.startAt - Date.now();
  if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  const batchesBefore = client.stats.batches;
  const latencies: number[] = [];
  let applied = 0;
  const started = performance.now();
  const end = started + input.seconds * 1000;
  let next = input.offset;
  async function loop(): Promise<void> {
    while (performance.now() < end) {
      const request = input.requests[next++ % input.requests.length]!;
      const t0 = performance.now();
      const answer = await client.book(request);
      latencies.push(performance.now() - t0);
      if (answer.result === 'applied') applied++;
    }
  }
  await Promise.all(Array.from({ length: input.concurrency }, loop));
  const seconds = (performance.now() - started) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  client.close();
  return {
    bookings: latencies.length,
    applied,
    seconds,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    maxMs: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
    batches: client.stats.batches - batchesBefore,
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
