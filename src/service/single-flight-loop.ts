/**
 * A periodic pass that never overlaps itself. `runNow()` during a running pass waits for
 * the next pass (which starts when the current one ends), so a caller always gets a pass
 * that began after it asked: SPEC §1 "single flight".
 */
export class SingleFlightLoop {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;

  /** `pass` records and logs its own failures; a failed periodic pass just waits for the next tick. */
  constructor(
    private readonly pass: () => Promise<void>,
    private readonly intervalMs: number,
  ) {}

  /** Start ticking; the first periodic pass runs one interval from now. */
  start(): void {
    this.stopped = false;
    this.schedule();
  }

  /** Stop ticking and wait for a running pass to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.allSettled([this.running, this.queued]);
  }

  runNow(): Promise<void> {
    if (this.running === undefined) return this.launch();
    if (this.queued === undefined) {
      const next = () => {
        this.queued = undefined;
        return this.launch();
      };
      this.queued = this.running.then(next, next);
    }
    return this.queued;
  }

  private launch(): Promise<void> {
    const run: Promise<void> = this.pass().finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.runNow()
        .catch(() => undefined)
        .finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }
}
