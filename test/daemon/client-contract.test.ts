/**
 * Issue 11 item 8, through the real daemon: clients that break the booking protocol
 * (docs/api.md "Client contract"). What the daemon does in each case, that the violations it
 * can see are counted in `cueacct_late_settlements_total`, and that a client obeying the
 * contract never takes a cap past its limit. Leases are 3 s here (insert margin 750 ms).
 * Run `npm run build` first.
 */
import { describe, expect, it } from 'vitest';

import { createProc } from '../../src/db/fixtures.js';
import { releaseProcs } from '../../src/db/notify.js';
import { QUIET_DAEMON, createServedFarm, type NamedFarm } from '../commands/support.js';
import { waitFor } from '../support/db.js';
import { api } from '../support/daemon.js';
import { daemonPerFile } from '../support/hooks.js';
import { bookingFor } from '../support/service.js';

const { db, daemon } = daemonPerFile({ args: [...QUIET_DAEMON, '--lease', '3'] });

const book = (f: NamedFarm, cores: number) => api(daemon, 'POST', '/v1/book', bookingFor(f, cores));

async function farmOf(name: string, procs: { centicores: number }[] = []): Promise<NamedFarm> {
  return createServedFarm(db.sql, daemon, { show: name, burst: 10, procs });
}

/** Live cores of the farm's subscription and job in the daemon. */
async function live(f: NamedFarm): Promise<{ subscription: number; job: number }> {
  const sub = await api(daemon, 'GET', `/v1/state?vertex=subscription&show=${f.show}`);
  const job = await api(daemon, 'GET', `/v1/state?vertex=job&show=${f.show}`);
  return { subscription: sub.body.vertices[0].cores, job: job.body.vertices[0].cores };
}

async function sumProc(f: NamedFarm): Promise<number> {
  const [row] = await db.sql<{ cores: number }[]>`
    SELECT COALESCE(SUM(int_cores_reserved), 0)::int / 100 AS cores FROM proc WHERE pk_job = ${f.job}`;
  return row!.cores;
}

async function lateSettlements(op: string, reason: string): Promise<number> {
  const text = (await api(daemon, 'GET', '/metrics')).body as string;
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`cueacct_late_settlements_total{op="${op}",reason="${reason}"}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

async function status(): Promise<any> {
  return (await api(daemon, 'GET', '/v1/status')).body;
}

/** Wait until the sweep has settled `n` more leases than `before`. */
async function leasesExpired(before: number, n = 1): Promise<void> {
  await waitFor(async () => (await status()).bookings.lease_expired >= before + n, {
    timeoutMs: 30_000,
    message: 'the lease to expire',
  });
}

describe('the client contract', () => {
  it('the booking answer carries insert_deadline: the lease expiry minus the documented margin', async () => {
    const farm = await farmOf('deadline');
    const r = await book(farm, 1);
    expect(r.body.result).toBe('applied');
    const margin = Date.parse(r.body.lease_expires_at) - Date.parse(r.body.insert_deadline);
    expect(margin).toBe(750); // a quarter of the 3 s lease (10 s at the default 120 s)
    await api(daemon, 'POST', '/v1/rollback', { booking: r.body.booking });
  });

  it('(a) rollback after the proc was inserted, then Cuebot releases it: under by the rolled-back cores until the next recompute, then exact', async () => {
    const farm = await farmOf('rollbackafter', [{ centicores: 400 }]);
    expect(await live(farm)).toEqual({ subscription: 4, job: 4 });
    const r = await book(farm, 4);
    expect(r.body.result).toBe('applied');
    const proc = await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 400 });
    // The violation: "launch failed" after the insert. The daemon cannot tell; it undoes.
    expect((await api(daemon, 'POST', '/v1/rollback', { booking: r.body.booking })).body).toEqual({
      result: 'rolled_back',
    });
    expect(await sumProc(farm)).toBe(8);
    expect(await live(farm)).toEqual({ subscription: 4, job: 4 }); // 4 under: the rolled-back cores

    const releases = (await status()).listener.applied.release;
    await releaseProcs(db.sql, [proc.id], 100);
    await waitFor(async () => (await status()).listener.applied.release > releases, {
      timeoutMs: 30_000,
      message: 'the release to arrive',
    });
    expect(await sumProc(farm)).toBe(4);
    expect(await live(farm)).toEqual({ subscription: 0, job: 0 }); // still 4 under, never more

    await api(daemon, 'POST', '/v1/admin/recompute');
    expect(await live(farm)).toEqual({ subscription: 4, job: 4 }); // healed: SUM(proc)
  });

  it('(b) a client obeying the contract (proc inserted before insert_deadline, then it dies): no cap is exceeded', async () => {
    const farm = await farmOf('obeys');
    const expiredBefore = (await status()).bookings.lease_expired;
    const r = await book(farm, 6);
    expect(r.body.result).toBe('applied');
    await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 600 });
    expect(Date.now()).toBeLessThan(Date.parse(r.body.insert_deadline));
    // The client dies without confirming: its lease settles it as confirmed.
    await leasesExpired(expiredBefore);
    for (let i = 0; i < 2; i++) await api(daemon, 'POST', '/v1/admin/recompute');
    expect(await live(farm)).toEqual({ subscription: 6, job: 6 });
    expect((await book(farm, 5)).body).toEqual({
      result: 'limit_exceeded',
      table: 'subscription',
      current: 6,
      limit: 10,
    });
  });

  it('(b) a slow client inserting after its lease expired: the late confirm is counted and re-counts the booking', async () => {
    const farm = await farmOf('slowclient');
    const before = {
      confirm: await lateSettlements('confirm', 'lease_expired'),
      unknown: await lateSettlements('confirm', 'unknown_booking'),
      rollback: await lateSettlements('rollback', 'lease_expired'),
    };
    const expiredBefore = (await status()).bookings.lease_expired;
    const slow = await book(farm, 6);
    const abandoned = await book(farm, 1);
    expect([slow.body.result, abandoned.body.result]).toEqual(['applied', 'applied']);
    await leasesExpired(expiredBefore, 2);
    // Two recomputes see no proc: the expired bookings are dropped.
    for (let i = 0; i < 2; i++) await api(daemon, 'POST', '/v1/admin/recompute');
    expect(await live(farm)).toEqual({ subscription: 0, job: 0 });

    // The violation: the proc is inserted after the lease expired, then confirmed late.
    await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 600 });
    expect(await api(daemon, 'POST', '/v1/confirm', { booking: slow.body.booking })).toEqual({
      status: 404,
      body: { error: 'lease_expired' },
    });
    expect(await lateSettlements('confirm', 'lease_expired')).toBe(before.confirm + 1);
    // The daemon counted it again at once: the burst holds.
    expect(await live(farm)).toEqual({ subscription: 6, job: 6 });
    expect((await book(farm, 5)).body).toMatchObject({ result: 'limit_exceeded', current: 6, limit: 10 });
    // A second confirm of it, and a rollback after expiry, are counted too.
    expect((await api(daemon, 'POST', '/v1/confirm', { booking: slow.body.booking })).body).toEqual({
      error: 'unknown_booking',
    });
    expect(await lateSettlements('confirm', 'unknown_booking')).toBe(before.unknown + 1);
    expect((await api(daemon, 'POST', '/v1/rollback', { booking: abandoned.body.booking })).body).toEqual({
      error: 'lease_expired',
    });
    expect(await lateSettlements('rollback', 'lease_expired')).toBe(before.rollback + 1);

    // Recomputes now see the proc: exactly SUM(proc), the re-count is not kept twice.
    for (let i = 0; i < 2; i++) await api(daemon, 'POST', '/v1/admin/recompute');
    expect(await live(farm)).toEqual({ subscription: 6, job: 6 });
  });
});
