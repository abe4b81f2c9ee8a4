/**
 * Hard deadlines on database calls. A stalled connection (packets stop, socket stays open)
 * never settles a postgres.js query by itself; every await on the database that the lock,
 * the listener or a pass depends on is raced with a timer instead.
 */

/** A call that did not settle in time; the caller treats its connection as unusable. */
export class DeadlineError extends Error {
  constructor(what: string, ms: number) {
    super(`${what} did not complete within ${Math.round(ms)} ms`);
  }
}

/**
 * `work`, or a DeadlineError after `ms`. The abandoned `work` may still settle later: its
 * rejection is swallowed here so it can never become an unhandled rejection.
 */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(what, ms)), ms);
  });
  work.catch(() => undefined);
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/** A timer that `cancel()` ends early (resolving false); true when it ran its course. */
export function cancellableDelay(ms: number): { done: Promise<boolean>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  let settle: (ran: boolean) => void = () => undefined;
  const done = new Promise<boolean>((resolve) => {
    settle = resolve;
    timer = setTimeout(() => resolve(true), ms);
  });
  return {
    done,
    cancel: () => {
      clearTimeout(timer);
      settle(false);
    },
  };
}
