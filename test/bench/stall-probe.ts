/**
 * Event-loop stalls during a stretch of work, and how much of each was garbage collection.
 *
 * A timer ticks every millisecond; a gap between two ticks is how long the loop was held.
 * V8's pauses (a `gc` PerformanceObserver) stop the same thread, so a gap minus the pauses
 * inside it is what the code itself held the loop for, or the OS, not giving the thread a
 * CPU. The idle sibling (idle-sibling.ts) measures that last part on its own.
 */
import { PerformanceObserver, performance, type PerformanceEntry } from 'node:perf_hooks';

export interface StallReport {
  /** Longest gap between two ticks. */
  maxMs: number;
  /** Longest gap once the GC pauses inside it are taken out. */
  maxWithoutGcMs: number;
  /** Longest single GC pause, and how many there were. */
  maxGcMs: number;
  gcPauses: number;
}

interface Span {
  start: number;
  end: number;
}

/** Gaps shorter than this are the timer's own granularity, not a stall. */
const MIN_GAP_MS = 1.5;

export class StallProbe {
  private readonly gaps: Span[] = [];
  private readonly pauses: Span[] = [];
  private readonly observer = new PerformanceObserver((list) => this.record(list.getEntries()));
  private running = false;
  private last = 0;

  start(): void {
    this.observer.observe({ entryTypes: ['gc'] });
    this.running = true;
    this.last = performance.now();
    const tick = () => {
      const now = performance.now();
      if (now - this.last > MIN_GAP_MS) this.gaps.push({ start: this.last, end: now });
      this.last = now;
      if (this.running) setTimeout(tick, 0);
    };
    setTimeout(tick, 0);
  }

  stop(): StallReport {
    this.running = false;
    this.record(this.observer.takeRecords());
    this.observer.disconnect();
    let maxMs = 0;
    let maxWithoutGcMs = 0;
    for (const gap of this.gaps) {
      let inGc = 0;
      for (const pause of this.pauses)
        inGc += Math.max(0, Math.min(gap.end, pause.end) - Math.max(gap.start, pause.start));
      maxMs = Math.max(maxMs, gap.end - gap.start);
      maxWithoutGcMs = Math.max(maxWithoutGcMs, gap.end - gap.start - inGc);
    }
    return {
      maxMs,
      maxWithoutGcMs,
      maxGcMs: this.pauses.reduce((max, pause) => Math.max(max, pause.end - pause.start), 0),
      gcPauses: this.pauses.length,
    };
  }

  private record(entries: readonly PerformanceEntry[]): void {
    for (const entry of entries)
      this.pauses.push({ start: entry.startTime, end: entry.startTime + entry.duration });
  }
}
