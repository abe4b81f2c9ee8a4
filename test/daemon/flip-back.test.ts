/**
 * Issue 11 item 7, end to end through the real daemon: a show flipped away and back within one
 * lease, with a booking in flight, whose confirm lands while the flip seed's snapshot is being
 * read. The seed must carry that confirm (as a recompute does): otherwise the store reads 0
 * while 6 cores run, and a booking past the burst is applied. Run `npm run build` first.
 *
 * The race is made deterministic with a table lock: the seed's REPEATABLE READ transaction
 * takes its snapshot at its first statement (the subscription caps) and then waits on
 * `folder_resource`, which the test holds; meanwhile the proc commits and the client confirms.
 */
import { describe, expect, it } from 'vitest';

import { createProc } from '../../src/db/fixtures.js';
import { setShowManaged } from '../../src/db/notify.js';
import { QUIET_DAEMON, createServedFarm } from '../commands/support.js';
import { waitFor } from '../support/db.js';
import { api } from '../support/daemon.js';
import { daemonPerFile } from '../support/hooks.js';
import { bookingFor } from '../support/service.js';

const { db, daemon } = daemonPerFile({ args: QUIET_DAEMON });

async function published(show: string): Promise<boolean> {
  const status = await api(daemon, 'GET', '/v1/status');
  return (status.body.managed_shows as { id: string }[]).some((entry) => entry.id === show);
}

async function flipTo(show: string, managed: boolean): Promise<void> {
  // A flip made without a drain (an older cueacct, or no daemon at the address it was given).
  await db.sql.begin((tx) => setShowManaged(tx as never, show, managed));
}

describe('flip back within a lease (the flip seed races a confirm)', () => {
  it('carries a confirm that lands while the seed snapshot is read; a booking past the burst is refused', async () => {
    const farm = await createServedFarm(db.sql, daemon, { show: 'flipback', burst: 10 });
    const inFlight = await api(daemon, 'POST', '/v1/book', bookingFor(farm, 6));
    expect(inFlight.body.result).toBe('applied');

    await flipTo(farm.show, false);
    await waitFor(async () => !(await published(farm.show)), { timeoutMs: 30_000, message: 'flip away' });

    await db.sql.begin(async (lock) => {
      await lock`LOCK TABLE folder_resource IN ACCESS EXCLUSIVE MODE`;
      await flipTo(farm.show, true);
      // The seed has taken its snapshot and waits for the lock.
      await waitFor(
        async () => {
          const [row] = await db.sql<{ n: number }[]>`
            SELECT count(*)::int AS n FROM pg_locks
            WHERE NOT granted AND relation = 'folder_resource'::regclass`;
          return row!.n > 0;
        },
        { timeoutMs: 30_000, message: 'the flip seed to wait on folder_resource' },
      );
      // The scheduler's launch: the proc commits after the seed's snapshot, then it confirms.
      await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 600 });
      const confirmed = await api(daemon, 'POST', '/v1/confirm', { booking: inFlight.body.booking });
      expect(confirmed.body).toEqual({ result: 'confirmed' });
      expect(await published(farm.show)).toBe(false);
    });
    await waitFor(() => published(farm.show), { timeoutMs: 30_000, message: 'the show to be published' });

    const state = await api(daemon, 'GET', `/v1/state?vertex=subscription&show=${farm.show}`);
    expect(state.body.vertices[0]).toMatchObject({ cores: 6, max_cores: 10 });
    expect(await api(daemon, 'POST', '/v1/book', bookingFor(farm, 5))).toEqual({
      status: 409,
      body: { result: 'limit_exceeded', table: 'subscription', current: 6, limit: 10 },
    });

    // The next recompute sees the proc: still exactly 6 (the carried confirm is not kept twice).
    await api(daemon, 'POST', '/v1/admin/recompute');
    await api(daemon, 'POST', '/v1/admin/recompute');
    const after = await api(daemon, 'GET', `/v1/state?vertex=subscription&show=${farm.show}`);
    expect(after.body.vertices[0]).toMatchObject({ cores: 6 });
  });
});
