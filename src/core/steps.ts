/**
 * Work over a whole farm done one small step at a time. The core has no clock, so it only
 * says where it may pause (each `yield`); the caller decides how many steps fit in one turn
 * of its event loop, or runs them all at once.
 */
export type Steps<T> = Generator<void, T, void>;

/** Every step at once: for callers that may block (tests, a one-shot command). */
export function runToEnd<T>(steps: Steps<T>): T {
  for (;;) {
    const next = steps.next();
    if (next.done === true) return next.value;
  }
}
