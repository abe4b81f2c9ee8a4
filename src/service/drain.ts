/**
 * Show drains: phase one of the two-phase flip to Cuebot (`flip-show --to cuebot`, issue 11
 * item 6). The flip rewrites the show's PG tables from `SUM(proc)`; a booking still in flight
 * then has no proc row yet, and Cuebot would resume short for good. So first the daemon stops
 * taking bookings of the show (`show_draining`) and waits until none of its bookings is in
 * flight: each ends by confirm (its proc is committed), rollback (there is none) or lease
 * expiry (the client's insert deadline has passed).
 *
 * It counts in-flight bookings per show (the store only counts them all). A drain that does
 * not complete in time is lifted at once, so a failed flip never leaves a show unbookable; a
 * completed drain holds until it is lifted or the show leaves the managed set.
 */
export type DrainOutcome = { drained: true; waitedMs: number } | { drained: false; inflight: number };

export class ShowDrains {
  private readonly inflight = new Map<string, number>();
  /** Draining shows and why (the reason `show_draining` answers name). */
  private readonly draining = new Map<string, string>();
  private readonly waiters = new Map<string, Set<() => void>>();

  /** In-flight bookings of one show. */
  inflightOf(show: string): number {
    return this.inflight.get(show) ?? 0;
  }

  /** Why bookings of the show are refused, or undefined when it is not draining. */
  reasonFor(show: string): string | undefined {
    return this.draining.size === 0 ? undefined : this.draining.get(show);
  }

  /** Draining shows and their reasons, for the status page. */
  list(): { id: string; reason: string }[] {
    return [...this.draining].map(([id, reason]) => ({ id, reason }));
  }

  /** A booking of the show was applied. */
  booked(show: string): void {
    this.inflight.set(show, (this.inflight.get(show) ?? 0) + 1);
  }

  /** A booking of the show ended (confirm, rollback or lease expiry). */
  settled(show: string): void {
    const left = (this.inflight.get(show) ?? 0) - 1;
    if (left > 0) {
      this.inflight.set(show, left);
      return;
    }
    this.inflight.delete(show);
    const waiting = this.waiters.get(show);
    if (waiting === undefined) return;
    this.waiters.delete(show);
    for (const wake of waiting) wake();
  }

  /**
   * Refuse new bookings of the show, then wait until none is in flight, for at most
   * `timeoutMs`. On timeout the drain is lifted and the in-flight count is returned.
   */
  async drain(show: string, reason: string, timeoutMs: number): Promise<DrainOutcome> {
    const started = performance.now();
    this.draining.set(show, reason);
    if (this.inflightOf(show) === 0) return { drained: true, waitedMs: performance.now() - started };
    const drained = await new Promise<boolean>((resolve) => {
      let waiting = this.waiters.get(show);
      if (waiting === undefined) {
        waiting = new Set();
        this.waiters.set(show, waiting);
      }
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.waiters.get(show)?.delete(wake);
        resolve(false);
      }, timeoutMs);
      waiting.add(wake);
    });
    if (drained) return { drained: true, waitedMs: performance.now() - started };
    this.draining.delete(show);
    return { drained: false, inflight: this.inflightOf(show) };
  }

  /** Take bookings of the show again. False when it was not draining. */
  lift(show: string): boolean {
    return this.draining.delete(show);
  }
}
