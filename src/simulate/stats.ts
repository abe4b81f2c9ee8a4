/** Latency samples and their summary (milliseconds). */

export interface LatencySummary {
  count: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

/**
 * Latency samples. Beyond `capacity` it keeps a uniform random sample (reservoir sampling), so
 * a long run (`serve --simulate`) does not grow without bound; percentiles stay representative.
 */
export class Latencies {
  private samples: number[] = [];
  private seen = 0;

  constructor(private readonly capacity = 200_000) {}

  add(ms: number): void {
    this.seen++;
    if (this.samples.length < this.capacity) {
      this.samples.push(ms);
      return;
    }
    const slot = Math.floor(Math.random() * this.seen);
    if (slot < this.capacity) this.samples[slot] = ms;
  }

  get count(): number {
    return this.seen;
  }

  summary(): LatencySummary {
    return { ...summarize(this.samples), count: this.seen };
  }
}

/** Nearest-rank percentile of a sorted array. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

export function summarize(samples: readonly number[]): LatencySummary {
  if (samples.length === 0) return { count: 0, p50: null, p99: null, max: null, mean: null };
  const sorted = Float64Array.from(samples).sort();
  const list = Array.from(sorted);
  let total = 0;
  for (const v of list) total += v;
  return {
    count: list.length,
    p50: percentile(list, 50),
    p99: percentile(list, 99),
    max: list[list.length - 1]!,
    mean: total / list.length,
  };
}
