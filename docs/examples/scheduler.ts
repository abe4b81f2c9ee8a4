// A scheduler's dispatch round against cueacct, complete: book each frame, insert its proc,
// confirm it — or roll it back when nothing was inserted. Run by test/client/client.test.ts
// from the packed package; docs/api.md includes this file verbatim.
import { AccountingClient, isAccountingClientError, type BookingRequest } from 'cueacct';

interface Frame {
  id: string;
  booking: BookingRequest;
}

// One client per process: it keeps its connections alive and batches concurrent calls.
const client = new AccountingClient({
  url: process.env.CUEACCT_URL ?? 'http://127.0.0.1:7878',
  token: process.env.CUEACCT_TOKEN,
});

/**
 * Your proc insert: one PostgreSQL transaction that commits the proc row (true), or inserts
 * nothing (false). Give it a statement timeout that ends before `deadline`. Here the frames
 * whose id ends in "-x" fail to launch, to show the rollback path.
 */
async function insertProc(frame: Frame, deadline: Date): Promise<boolean> {
  if (Date.now() >= deadline.getTime()) return false;
  return !frame.id.endsWith('-x');
}

async function dispatch(frames: Frame[]): Promise<Record<string, number>> {
  const tally: Record<string, number> = {};
  // Every withBooking below books in the same event-loop turn: one POST /v1/batch.
  const outcomes = await Promise.allSettled(
    frames.map((frame) =>
      client.withBooking(frame.booking, async ({ deadline }) =>
        (await insertProc(frame, deadline)) ? { inserted: true, value: frame.id } : { inserted: false },
      ),
    ),
  );
  for (const outcome of outcomes) {
    if (outcome.status === 'fulfilled') {
      // confirmed | rolled_back | lease_expired | limit_exceeded | not_managed
      tally[outcome.value.result] = (tally[outcome.value.result] ?? 0) + 1;
    } else if (isAccountingClientError(outcome.reason)) {
      // unavailable (503 after every retry), unreachable, rejected (a 400: a bug in the request)
      tally[outcome.reason.kind] = (tally[outcome.reason.kind] ?? 0) + 1;
    } else {
      throw outcome.reason; // your insert failed in an unexpected way; the booking was confirmed
    }
  }
  return tally;
}

const keys = JSON.parse(process.env.CUEACCT_EXAMPLE_KEYS ?? '{}') as Omit<BookingRequest, 'cores' | 'gpus'>;
const frames: Frame[] = ['f1', 'f2', 'f3-x', 'f4'].map((id) => ({
  id,
  booking: { ...keys, cores: 4, gpus: 0 },
}));
try {
  console.log(JSON.stringify(await dispatch(frames)));
} finally {
  client.close();
}
