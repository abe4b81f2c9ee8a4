/**
 * The refresh loop of the live `inspect` view, kept out of React: one fetch at a time (never
 * overlapping), one every `intervalMs` measured start to start, errors reported and retried at
 * the same pace, a pause that starts no fetch until resumed, and `refreshNow()` to fetch at
 * once (after a resume or a switch of the vertex kind).
 */

export interface PollerOptions<T> {
  fetch: () => Promise<T>;
  intervalMs: number;
  onResult: (value: T) => void;
  onError: (err: unknown) => void;
  /** Smallest pause between two fetches when one took longer than the interval; default min(interval, 100 ms). */
  minGapMs?: number;
  /** Monotonic clock in ms; default `performance.now()`. */
  clock?: () => number;
}

export class Poller<T> {
  private readonly options: PollerOptions<T>;
  private stopped = true;
  private pausedFlag = false;
  private wakeRequested = false;
  private wake: (() => void) | null = null;
  private loopDone: Promise<void> = Promise.resolve();
  private fetches = 0;

  constructor(options: PollerOptions<T>) {
    if (!(options.intervalMs > 0)) throw new RangeError(`intervalMs must be > 0, got ${options.intervalMs}`);
    this.options = options;
  }

  /** Number of fetches started so far. */
  get fetchCount(): number {
    return this.fetches;
  }

  get paused(): boolean {
    return this.pausedFlag;
  }

  get running(): boolean {
    return !this.stopped;
  }

  /** Start polling (the first fetch starts at once unless paused). Idempotent. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.loopDone = this.loop();
  }

  /** Stop polling; resolves when the loop has ended (an in-flight fetch is awaited, its result dropped). */
  stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    return this.loopDone;
  }

  /** Paused: no fetch starts (one already in flight still delivers). Resuming fetches at once. */
  setPaused(paused: boolean): void {
    if (this.pausedFlag === paused) return;
    this.pausedFlag = paused;
    if (!paused) this.refreshNow();
  }

  /** Fetch as soon as possible: now if idle, right after the current fetch otherwise (not while paused). */
  refreshNow(): void {
    this.wakeRequested = true;
    this.wake?.();
  }

  private async loop(): Promise<void> {
    const clock = this.options.clock ?? (() => performance.now());
    const minGap = this.options.minGapMs ?? Math.min(this.options.intervalMs, 100);
    while (!this.stopped) {
      if (this.pausedFlag) {
        await this.sleep(null);
        continue;
      }
      this.wakeRequested = false;
      const startedAt = clock();
      this.fetches++;
      try {
        const value = await this.options.fetch();
        if (!this.stopped) this.deliver(() => this.options.onResult(value));
      } catch (err) {
        if (!this.stopped) this.deliver(() => this.options.onError(err));
      }
      if (this.stopped) break;
      if (this.wakeRequested) continue;
      const elapsed = clock() - startedAt;
      await this.sleep(Math.max(this.options.intervalMs - elapsed, minGap));
    }
  }

  /** A throwing callback must not end the loop. */
  private deliver(fn: () => void): void {
    try {
      fn();
    } catch {
      // The view reports its own errors; polling goes on.
    }
  }

  /** Wait `ms` (or until woken when `null`); `refreshNow()`, `setPaused(false)` and `stop()` wake it. */
  private sleep(ms: number | null): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        if (this.wake === done) this.wake = null;
        resolve();
      };
      this.wake = done;
      if (this.stopped || (this.wakeRequested && !this.pausedFlag)) {
        done();
        return;
      }
      if (ms !== null) timer = setTimeout(done, ms);
    });
  }
}
