/**
 * `flip-show --to cuebot` is two-phase (issue 11 item 6), through the real daemon and the
 * real command: the daemon drains the show (no new bookings, none in flight), and only then
 * the show's PG tables are rewritten from SUM(proc) and the flag flipped, so Cuebot resumes
 * on numbers that include every proc the daemon admitted. Run `npm run build` first.
 */
import { describe, expect, it } from 'vitest';

import { createProc } from '../../src/db/fixtures.js';
import { waitFor } from '../support/db.js';
import { api } from '../support/daemon.js';
import { daemonPerFile } from '../support/hooks.js';
import { bookingFor } from '../support/service.js';
import {
  QUIET_DAEMON,
  cli,
  closedPort,
  createNamedFarm,
  createServedFarm,
  oneLine,
  type NamedFarm,
} from './support.js';

const { db, daemon } = daemonPerFile({ args: QUIET_DAEMON });

const flip = (...args: string[]) => cli(['flip-show', '--database-url', db.url, ...args]);

async function managed(show: string): Promise<boolean> {
  const [row] = await db.sql<{ managed: boolean }[]>`
    SELECT b_scheduler_managed AS managed FROM show WHERE pk_show = ${show}`;
  return row!.managed;
}

async function subscriptionCores(show: string): Promise<number> {
  const [row] = await db.sql<
    { cores: number }[]
  >`SELECT int_cores AS cores FROM subscription WHERE pk_show = ${show}`;
  return row!.cores;
}

async function sumProc(show: string): Promise<number> {
  const [row] = await db.sql<{ cores: number }[]>`
    SELECT COALESCE(SUM(int_cores_reserved), 0)::int AS cores FROM proc WHERE pk_show = ${show}`;
  return row!.cores;
}

async function managedFarm(name: string): Promise<NamedFarm> {
  return createServedFarm(db.sql, daemon, { show: name, burst: 10, procs: [{ centicores: 200 }] });
}

async function draining(show: string): Promise<boolean> {
  const status = await api(daemon, 'GET', '/v1/status');
  return (status.body.draining_shows as { id: string }[]).some((entry) => entry.id === show);
}

describe('flip-show --to cuebot with bookings in flight', () => {
  it('drains first: waits for the in-flight booking to confirm, then Cuebot’s subscription equals SUM(proc) including its proc', async () => {
    const farm = await managedFarm('drainshow');
    const inFlight = await api(daemon, 'POST', '/v1/book', bookingFor(farm, 3));
    expect(inFlight.body.result).toBe('applied');

    const flipping = flip('drainshow', '--to', 'cuebot', '--yes', '--daemon', daemon.url, '--timeout', '60');
    await waitFor(() => draining(farm.show), { timeoutMs: 30_000, message: 'the daemon to drain the show' });

    // Phase one holds: new bookings of the show are refused, naming the reason, and nothing flipped.
    expect(await api(daemon, 'POST', '/v1/book', bookingFor(farm, 1))).toEqual({
      status: 409,
      body: { result: 'show_draining', show: farm.show, reason: 'flipping to cuebot' },
    });
    expect(await managed(farm.show)).toBe(true);

    // The scheduler launches: the proc row commits, then it confirms.
    await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 300 });
    expect((await api(daemon, 'POST', '/v1/confirm', { booking: inFlight.body.booking })).body).toEqual({
      result: 'confirmed',
    });

    const r = await flipping;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      new RegExp(
        `^The daemon at ${daemon.url} drained show drainshow: no booking in flight \\(waited [\\d.]+ (µs|ms|s)\\)\\.$`,
        'm',
      ),
    );
    expect(await managed(farm.show)).toBe(false);
    expect(await sumProc(farm.show)).toBe(500);
    expect(await subscriptionCores(farm.show)).toBe(500);
    // The daemon dropped the show and its drain with it.
    await waitFor(async () => !(await draining(farm.show)), {
      timeoutMs: 30_000,
      message: 'the drain to go',
    });
    expect((await api(daemon, 'POST', '/v1/book', bookingFor(farm, 1))).body).toEqual({
      result: 'not_managed',
    });
  });

  it('refuses when the show cannot drain in time: exit 1, one line, the drain lifted, the show managed and bookable', async () => {
    const farm = await managedFarm('stuckshow');
    const inFlight = await api(daemon, 'POST', '/v1/book', bookingFor(farm, 3));
    expect(inFlight.body.result).toBe('applied');

    const r = await flip('stuckshow', '--to', 'cuebot', '--yes', '--daemon', daemon.url, '--timeout', '1');
    expect(r.code).toBe(1);
    expect(oneLine(r.stderr)).toBe(
      'cueacct flip-show: show stuckshow still has 1 booking in flight after 1.00 s: not flipped; the drain is lifted and the show stays managed',
    );
    expect(await managed(farm.show)).toBe(true);
    expect(await subscriptionCores(farm.show)).toBe(0); // nothing rewritten
    expect(await draining(farm.show)).toBe(false);
    const again = await api(daemon, 'POST', '/v1/book', bookingFor(farm, 1));
    expect(again.body.result).toBe('applied');
    for (const id of [inFlight.body.booking, again.body.booking]) {
      await api(daemon, 'POST', '/v1/rollback', { booking: id });
    }
  });

  it('with no daemon listening nothing can be in flight: the flip goes ahead without a drain', async () => {
    await createNamedFarm(db.sql, {
      show: 'nodaemon',
      managed: true,
      burst: 10,
      procs: [{ centicores: 200 }],
    });
    const port = await closedPort();
    const r = await flip('nodaemon', '--to', 'cuebot', '--yes', '--daemon', `http://127.0.0.1:${port}`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `No daemon listens at http://127.0.0.1:${port}: nothing can be in flight; flipping without a drain.`,
    );
    const [row] = await db.sql<{ managed: boolean; cores: number }[]>`
      SELECT s.b_scheduler_managed AS managed, sub.int_cores AS cores
      FROM show s JOIN subscription sub USING (pk_show) WHERE s.str_name = 'nodaemon'`;
    expect(row).toEqual({ managed: false, cores: 200 });
  });

  it('the drain endpoint validates its body and answers at once for a show with nothing in flight', async () => {
    expect(await api(daemon, 'POST', '/v1/admin/drain-show', { show: 'x' })).toEqual({
      status: 400,
      body: { error: 'bad_request', message: 'timeout_ms: missing' },
    });
    const drained = await api(daemon, 'POST', '/v1/admin/drain-show', { show: 'idle-show', timeout_ms: 0 });
    expect(drained).toMatchObject({ status: 200, body: { result: 'drained', show: 'idle-show' } });
    expect(await api(daemon, 'POST', '/v1/admin/undrain-show', { show: 'idle-show' })).toEqual({
      status: 200,
      body: { result: 'lifted', show: 'idle-show' },
    });
    expect((await api(daemon, 'POST', '/v1/admin/undrain-show', { show: 'idle-show' })).body.result).toBe(
      'not_draining',
    );
  });
  it('refuses (rolled back) when the daemon no longer holds the drain at commit, or became unreachable', async () => {
    // Hold the show row so the command stops in its flip transaction after the drain answered.
    async function flipHeldAtLock(farm: NamedFarm, url: string, meanwhile: () => Promise<unknown>) {
      let result!: Awaited<ReturnType<typeof flip>>;
      await db.sql.begin(async (hold) => {
        await hold`SELECT 1 FROM show WHERE pk_show = ${farm.show} FOR UPDATE`;
        const flipping = flip(farm.showName, '--to', 'cuebot', '--yes', '--daemon', url, '--timeout', '30');
        await waitFor(
          async () => {
            const [row] = await db.sql<{ n: number }[]>`
              SELECT count(*)::int AS n FROM pg_stat_activity
              WHERE application_name = 'cueacct-flip-show' AND wait_event_type = 'Lock'`;
            return row!.n > 0;
          },
          { timeoutMs: 30_000, message: 'the flip to wait on the show row' },
        );
        await meanwhile();
        void flipping.then((r) => (result = r));
      });
      await waitFor(() => result !== undefined, { timeoutMs: 60_000, message: 'the flip to end' });
      return result;
    }

    // A daemon restarted since the drain holds none (lifted here by hand to stand for it).
    const farm = await managedFarm('forgotdrain');
    const forgot = await flipHeldAtLock(farm, daemon.url, () =>
      api(daemon, 'POST', '/v1/admin/undrain-show', { show: farm.show }),
    );
    expect(forgot.code).toBe(1);
    expect(oneLine(forgot.stderr)).toBe(
      `cueacct flip-show: the daemon at ${daemon.url} no longer holds the drain of show forgotdrain (restarted?): not flipped (rolled back)`,
    );
    expect(await managed(farm.show)).toBe(true);
    expect(await subscriptionCores(farm.show)).toBe(0);

    // A daemon that stops answering after the drain (last test: it stops the file's daemon).
    const gone = await flipHeldAtLock(farm, daemon.url, () => daemon.stop());
    expect(gone.code).toBe(3);
    expect(oneLine(gone.stderr)).toMatch(
      new RegExp(
        `^cueacct flip-show: the daemon at ${daemon.url} became unreachable after draining show forgotdrain: not flipped \\(rolled back\\)`,
      ),
    );
    expect(await managed(farm.show)).toBe(true);
  });
});
