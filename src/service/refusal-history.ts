/**
 * Time-windowed refusal rates and a short utilization/refusal history per vertex, kept
 * outside the clock-free core: the service samples the store's plain counters every
 * `sampleMs` into a small ring per vertex that matters ("why isn't my job getting cores?").
 *
 * A vertex is tracked while it has refused a booking or sits near its cap (utilization at
 * or above {@link NEAR_CAP}); once it has neither refused nor been near its cap for a whole
 * window it is dropped again, so memory follows the number of vertices in trouble, not the
 * size of the farm. Sampling walks every vertex once per tick, never the booking path; the
 * daemon runs that walk in slices (a few ms at farm scale, which no booking may wait behind).
 */
import { runToEnd, type Steps } from '../core/steps.js';
import type { VertexView } from '../core/vertex.js';
import { utilization } from '../core/vertex.js';

/** Utilization from which a vertex is kept in the history even without refusals. */
export const NEAR_CAP = 0.9;
/** How far back the history (and the sparkline) reaches. */
export const HISTORY_WINDOW_MS = 10 * 60_000;

export interface HistorySample {
  /** Unix ms of the sample. */
  at: number;
  /** Refusals (all tables of the vertex) counted up to this sample. */
  refusals: number;
  utilization: number | null;
}

export interface RefusalRates {
  /** Refusals per second over the last minute / five minutes (the history's span when shorter). */
  perSecond1m: number;
  perSecond5m: number;
  /** When the first sample that saw the latest refusals was taken (resolution: one sample period). */
  lastAt: number | null;
}

interface Track {
  samples: HistorySample[];
  /** Unix ms of the sample that first saw the current refusal count. */
  lastRefusalAt: number | null;
  /** Last sample at which the vertex refused or was near its cap. */
  lastInterestingAt: number;
}

function refusalsOf(vertex: VertexView): number {
  return vertex.refusedCores + vertex.refusedGpus;
}

export class RefusalHistory {
  private readonly tracks = new Map<VertexView, Track>();
  /** Refusal counts of vertices dropped from `tracks`, so a return is measured from there. */
  private readonly retired = new Map<VertexView, number>();
  private lastSampleAt: number | null = null;
  private firstSampleAt: number | null = null;
  private readonly capacity: number;

  constructor(readonly sampleMs: number) {
    this.capacity = Math.max(2, Math.ceil(HISTORY_WINDOW_MS / sampleMs) + 1);
  }

  /** Vertices currently tracked (for tests and the docs' memory bound). */
  get size(): number {
    return this.tracks.size;
  }

  /** One tick: append a sample for every vertex that refused or is near its cap. */
  sample(vertices: Iterable<VertexView>, now: number): void {
    runToEnd(this.sampleSteps(vertices, now));
  }

  /** `sample`, one step per vertex (a farm is tens of thousands): the daemon's tick runs it in slices. */
  *sampleSteps(vertices: Iterable<VertexView>, now: number): Steps<void> {
    const previousAt = this.lastSampleAt;
    this.lastSampleAt = now;
    this.firstSampleAt ??= now;
    for (const vertex of vertices) {
      yield;
      const refusals = refusalsOf(vertex);
      const util = utilization(vertex);
      let track = this.tracks.get(vertex);
      if (track === undefined) {
        const before = this.retired.get(vertex) ?? 0;
        const near = util !== null && util >= NEAR_CAP;
        if (refusals === before && !near) continue;
        this.retired.delete(vertex);
        track = { samples: [], lastRefusalAt: null, lastInterestingAt: now };
        // The count at the previous tick is known (it was not tracked, so it had not changed):
        // a baseline there makes the first rate honest instead of "all at once".
        if (previousAt !== null) track.samples.push({ at: previousAt, refusals: before, utilization: null });
        this.tracks.set(vertex, track);
      }
      const last = track.samples[track.samples.length - 1];
      if (last !== undefined && refusals > last.refusals) track.lastRefusalAt = now;
      if ((last !== undefined && refusals > last.refusals) || (util !== null && util >= NEAR_CAP)) {
        track.lastInterestingAt = now;
      }
      track.samples.push({ at: now, refusals, utilization: util });
      if (track.samples.length > this.capacity) track.samples.shift();
      if (now - track.lastInterestingAt >= HISTORY_WINDOW_MS) {
        this.tracks.delete(vertex);
        this.retired.set(vertex, refusals);
      }
    }
  }

  /** Rates with the live counter as the newest point; zero for a vertex not tracked. */
  rates(vertex: VertexView, now: number): RefusalRates {
    const track = this.tracks.get(vertex);
    const current = refusalsOf(vertex);
    if (track === undefined) {
      // Not tracked at the last tick: its count had not moved since sampling began (or since
      // it was dropped after a quiet window), so anything above that happened since the tick.
      const before = this.retired.get(vertex) ?? 0;
      if (current <= before || this.firstSampleAt === null || now <= this.firstSampleAt) {
        return { perSecond1m: 0, perSecond5m: 0, lastAt: null };
      }
      const since = (windowMs: number) =>
        (current - before) / ((now - Math.max(now - windowMs, this.firstSampleAt!)) / 1000);
      return { perSecond1m: since(60_000), perSecond5m: since(300_000), lastAt: now };
    }
    const last = track.samples[track.samples.length - 1];
    // Refusals since the last tick are real but not yet stamped: the live count says "now".
    const lastAt = last !== undefined && current > last.refusals ? now : track.lastRefusalAt;
    return {
      perSecond1m: rateOver(track.samples, current, now, 60_000),
      perSecond5m: rateOver(track.samples, current, now, 300_000),
      lastAt,
    };
  }

  /** The samples of the last ten minutes, oldest first (empty for a vertex not tracked). */
  history(vertex: VertexView): readonly HistorySample[] {
    return this.tracks.get(vertex)?.samples ?? [];
  }
}

/** (current - count at the oldest sample inside the window) / its age. */
function rateOver(samples: readonly HistorySample[], current: number, now: number, windowMs: number): number {
  let base: HistorySample | undefined;
  for (const sample of samples) {
    if (now - sample.at <= windowMs) {
      base = sample;
      break;
    }
  }
  if (base === undefined || now <= base.at) return 0;
  return Math.max(0, current - base.refusals) / ((now - base.at) / 1000);
}
