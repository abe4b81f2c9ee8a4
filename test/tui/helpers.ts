/** Test helpers for the TUI: waiting on conditions with a deadline, and a scriptable fake daemon. */
import type { Snapshot, SnapshotQuery } from '../../src/tui/view-model.js';
import { makeStatus, sampleState } from './fixtures.js';

/**
 * Resolve as soon as `condition()` holds; reject after `timeoutMs` with `describe()` in the
 * message. Polls (every 5 ms): this waits for an observable state, it is not a sleep.
 */
export async function waitFor(
  condition: () => boolean,
  options: { timeoutMs?: number; describe?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 5_000);
  for (;;) {
    if (condition()) return;
    if (Date.now() > deadline) {
      throw new Error(
        `condition not met within ${options.timeoutMs ?? 5_000} ms${options.describe ? `:\n${options.describe()}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

export function connectionRefused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:7878'), { code: 'ECONNREFUSED' });
}

/** A daemon the test controls: answers with `snapshot` while `up`, else throws ECONNREFUSED. */
export class FakeDaemon {
  up = true;
  snapshot: Snapshot = { status: makeStatus(), state: sampleState() };
  readonly queries: SnapshotQuery[] = [];
  /** Applied bookings added to the status counters on every answer (drives the rates). */
  bookingsPerAnswer = 0;

  get calls(): number {
    return this.queries.length;
  }

  readonly fetch = async (query: SnapshotQuery): Promise<Snapshot> => {
    this.queries.push({ ...query });
    if (!this.up) throw connectionRefused();
    if (this.bookingsPerAnswer !== 0) {
      const b = this.snapshot.status.bookings;
      this.snapshot = {
        ...this.snapshot,
        status: { ...this.snapshot.status, bookings: { ...b, applied: b.applied + this.bookingsPerAnswer } },
      };
    }
    return this.snapshot;
  };
}
