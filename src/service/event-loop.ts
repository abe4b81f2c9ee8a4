/**
 * Sharing the event loop with bookings. Every booking, release and limit change is a callback
 * on the daemon's one event loop, so anything that walks the whole farm (a recompute applying
 * its read, a big state page) must pause often enough that none of them waits long.
 */
import { performance } from 'node:perf_hooks';

import type { Steps } from '../core/steps.js';

/** How long one run of steps may hold the event loop: far below the 10 ms a booking may wait. */
export const SLICE_MS = 2;

/**
 * Steps between two looks at the clock. Most steps are under a microsecond and a cap step
 * (32 rows) about 0.1 ms, so eight keep a slice within about a millisecond of `sliceMs`; a
 * look costs ~50 ns.
 */
const STEPS_PER_CLOCK_READ = 8;

/** Let every callback that is ready (I/O included) run before going on. */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Run the steps to the end, yielding to the event loop about every `sliceMs`. */
export async function runInSlices<T>(steps: Steps<T>, sliceMs = SLICE_MS): Promise<T> {
  for (;;) {
    const until = performance.now() + sliceMs;
    do {
      for (let i = 0; i < STEPS_PER_CLOCK_READ; i++) {
        const next = steps.next();
        if (next.done === true) return next.value;
      }
    } while (performance.now() < until);
    await nextTurn();
  }
}
