/**
 * The accounting service against a real PostgreSQL: bootstrap, enforcement, the NOTIFY
 * feeds, recompute and the managed-show flip (SPEC §1 "Feeds and loops").
 */
import { describe, expect, it } from 'vitest';
import { createProc } from '../../src/db/fixtures.js';
import {
  changeNodeLimits,
  changeSubscriptionBurst,
  releaseProcs,
  setShowManaged,
} from '../../src/db/notify.js';
import { waitFor } from '../support/db.js';
import { servicePerTest } from '../support/hooks.js';
import { bookingFor, createSmallFarm, type RunningService } from '../support/service.js';

const { db, start } = servicePerTest();

function counter(
  r: RunningService,
  kind: 'subscription' | 'folder' | 'job',
  show: string,
  alloc: string,
  id: string,
) {
  const view =
    kind === 'subscription'
      ? r.service.store.subscription(show, alloc)
      : kind === 'folder'
        ? r.service.store.folder(id)
        : r.service.store.job(id);
  return { cores: view?.cores ?? 0, gpus: view?.gpus ?? 0 };
}

describe('AccountingService on PostgreSQL', () => {
  it('bootstraps caps and counters from existing procs before accepting bookings', async () => {
    const farm = await createSmallFarm(db.sql, { managed: true, burst: 10, jobCores: 8, jobGpus: 2 });
    await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 350, gpus: 1 });
    await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 250 });
    await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 900, local: true });
    const r = await start();
    expect(r.service.ready).toBe(true);
    // 350 + 250 centicores summed first, then divided once: 6 cores (not 3 + 2).
    expect(counter(r, 'subscription', farm.show, farm.alloc, '')).toEqual({ cores: 6, gpus: 1 });
    expect(counter(r, 'job', '', '', farm.job)).toEqual({ cores: 6, gpus: 1 });
    expect(r.service.store.subscription(farm.show, farm.alloc)?.maxCores).toBe(10);
    expect(r.service.store.job(farm.job)).toMatchObject({ maxCores: 8, maxGpus: 2 });
    expect(r.service.book(bookingFor(farm, 3))).toMatchObject({
      result: 'limit_exceeded',
      table: 'job',
      current: 6,
      limit: 8,
    });
    expect(r.service.book(bookingFor(farm, 2))).toMatchObject({ result: 'applied' });
  });

  it('rejects at each cap with the right table', async () => {
    const farm = await createSmallFarm(db.sql, {
      managed: true,
      burst: 10,
      folderCores: 8,
      folderGpus: 3,
      jobCores: 6,
      jobGpus: 2,
    });
    const r = await start();
    expect(r.service.book(bookingFor(farm, 11))).toMatchObject({
      result: 'limit_exceeded',
      table: 'subscription',
      limit: 10,
    });
    expect(r.service.book(bookingFor(farm, 9))).toMatchObject({ table: 'folder', limit: 8 });
    expect(r.service.book(bookingFor(farm, 7))).toMatchObject({ table: 'job', limit: 6 });
    expect(r.service.book(bookingFor(farm, 1, 4))).toMatchObject({ table: 'folder_gpus', limit: 3 });
    expect(r.service.book(bookingFor(farm, 1, 3))).toMatchObject({ table: 'job_gpus', limit: 2 });
    expect(r.service.book(bookingFor(farm, 6, 2))).toMatchObject({ result: 'applied' });
    expect(r.service.book(bookingFor(farm, 1))).toMatchObject({ table: 'job', current: 6 });
  });

  it('answers not_managed for a show Cuebot owns, and changes nothing', async () => {
    const farm = await createSmallFarm(db.sql, { managed: false, burst: 10 });
    const r = await start();
    expect(r.service.book(bookingFor(farm, 1))).toEqual({ result: 'not_managed' });
    expect(r.service.store.job(farm.job)).toBeUndefined();
  });

  it('frees capacity live on a Cuebot release, and ignores a rolled-back one', async () => {
    const farm = await createSmallFarm(db.sql, { managed: true, burst: 4 });
    const proc = await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 400 });
    const r = await start();
    expect(r.service.book(bookingFor(farm, 1))).toMatchObject({ table: 'subscription', current: 4 });

    // A release whose transaction rolls back is never delivered.
    await db.sql
      .begin(async (tx) => {
        await tx`DELETE FROM proc WHERE pk_proc = ${proc.id}`;
        await tx`SELECT pg_notify('acct_release', ${JSON.stringify({ show: farm.show, alloc: farm.alloc, folder: farm.folder, job: farm.job, layer: proc.layer, dept: 'd', cores: -4, gpus: 0 })})`;
        throw new Error('roll back');
      })
      .catch(() => undefined);
    await releaseProcs(db.sql, [], 100); // no-op, keeps the code path honest
    const probe = await db.sql`SELECT count(*)::int AS n FROM proc WHERE pk_proc = ${proc.id}`;
    expect(probe[0]!.n).toBe(1);
    await r.service.recompute(); // a fenced pass: every committed notification is applied by now
    expect(counter(r, 'subscription', farm.show, farm.alloc, '').cores).toBe(4);

    await releaseProcs(db.sql, [proc.id], 100);
    await waitFor(() => counter(r, 'subscription', farm.show, farm.alloc, '').cores === 0, {
      message: 'release applied',
    });
    expect(r.service.book(bookingFor(farm, 4))).toMatchObject({ result: 'applied' });
  });

  it('enforces a cap decrease sent by notify at once', async () => {
    const farm = await createSmallFarm(db.sql, { managed: true, burst: 100, jobCores: 50 });
    const r = await start();
    await changeNodeLimits(db.sql, { vertex: 'job', id: farm.job, maxCoresCenticores: 300 }, 100);
    await changeSubscriptionBurst(db.sql, { show: farm.show, alloc: farm.alloc, burstCenticores: 200 }, 100);
    await waitFor(() => r.service.store.subscription(farm.show, farm.alloc)?.maxCores === 2, {
      message: 'burst change',
    });
    expect(r.service.store.job(farm.job)?.maxCores).toBe(3);
    expect(r.service.book(bookingFor(farm, 3))).toMatchObject({ table: 'subscription', limit: 2 });
  });

  it('heals a missed release at the next recompute, and a missed cap change at the next reseed', async () => {
    const farm = await createSmallFarm(db.sql, { managed: true, burst: 10, jobCores: 10 });
    const proc = await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 600 });
    const r = await start();
    expect(counter(r, 'job', '', '', farm.job).cores).toBe(6);
    // Deleted and capped without any notification: as if the listener had missed them.
    await db.sql`DELETE FROM proc WHERE pk_proc = ${proc.id}`;
    await db.sql`UPDATE job_resource SET int_max_cores = 200 WHERE pk_job = ${farm.job}`;
    expect(counter(r, 'job', '', '', farm.job).cores).toBe(6); // reads high: under-books, never over
    await r.service.recompute();
    expect(counter(r, 'job', '', '', farm.job).cores).toBe(0);
    expect(r.service.status().last_recompute.drift?.job).toEqual({ cores: 6, gpus: 0, keys: 1 });
    expect(r.service.store.job(farm.job)?.maxCores).toBe(10);
    await r.service.reseed();
    expect(r.service.store.job(farm.job)?.maxCores).toBe(2);
  });

  it('keeps a booking in flight across a recompute, and after its confirm until the snapshot sees it', async () => {
    const farm = await createSmallFarm(db.sql, { managed: true, burst: 10 });
    const r = await start();
    const booked = r.service.book(bookingFor(farm, 5));
    if (!('booking' in booked)) throw new Error('expected applied');
    await r.service.recompute(); // proc not inserted yet: carried as in flight
    expect(counter(r, 'subscription', farm.show, farm.alloc, '').cores).toBe(5);
    await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 500 });
    expect(r.service.confirm(booked.booking)).toEqual({ result: 'confirmed' });
    await r.service.recompute();
    await r.service.recompute();
    expect(counter(r, 'subscription', farm.show, farm.alloc, '').cores).toBe(5);
    expect(r.service.confirm(booked.booking)).toEqual({ error: 'unknown_booking' });
  });

  it('survives pg_terminate_backend of the listener and catches up at once', async () => {
    const farm = await createSmallFarm(db.sql, { managed: true, burst: 10 });
    const proc = await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 300 });
    const r = await start();
    expect(counter(r, 'job', '', '', farm.job).cores).toBe(3);
    const before = r.service.status().last_recompute.at;
    await db.sql`DELETE FROM proc WHERE pk_proc = ${proc.id}`; // missed by the listener
    await db.sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cueacct-listener' AND datname = current_database()`;
    await waitFor(() => r.service.status().listener.reconnects >= 1 && r.service.listenerConnected, {
      message: 'listener reconnected',
    });
    // The reconnect runs a recompute at once, which heals the missed release.
    await waitFor(
      () =>
        counter(r, 'job', '', '', farm.job).cores === 0 && r.service.status().last_recompute.at !== before,
      {
        message: 'catch-up recompute',
      },
    );
    await releaseProcs(
      db.sql,
      [(await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 100 })).id],
      100,
    );
    await waitFor(() => r.service.status().listener.applied.release >= 1, {
      message: 'release after reconnect',
    });
  });

  it('enforces a newly managed show against its real usage from the first booking', async () => {
    const farm = await createSmallFarm(db.sql, { managed: false, burst: 10, showName: 'flipme' });
    await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 800 });
    const r = await start();
    expect(r.service.book(bookingFor(farm, 1))).toEqual({ result: 'not_managed' });
    await db.sql.begin((tx) => setShowManaged(tx as never, farm.show, true));
    await waitFor(() => r.service.status().managed_shows.some((s) => s.id === farm.show), {
      message: 'flip published',
    });
    expect(r.service.book(bookingFor(farm, 3))).toMatchObject({
      result: 'limit_exceeded',
      table: 'subscription',
      current: 8,
    });
    expect(r.service.book(bookingFor(farm, 2))).toMatchObject({ result: 'applied' });
    // Removal applies at once; an applied booking still settles.
    await db.sql.begin((tx) => setShowManaged(tx as never, farm.show, false));
    await waitFor(() => !r.service.status().managed_shows.some((s) => s.id === farm.show), {
      message: 'flip removed',
    });
    expect(r.service.book(bookingFor(farm, 1))).toEqual({ result: 'not_managed' });
  });

  it('rewrites the PG accounting tables through the triggers when usage is above a lowered cap', async () => {
    const farm = await createSmallFarm(db.sql, { managed: true, burst: 10, jobCores: 10 });
    await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 800, gpus: 2 });
    await db.sql`UPDATE subscription SET int_burst = 500 WHERE pk_show = ${farm.show}`; // lowered below usage
    await db.sql`UPDATE job_resource SET int_max_cores = -1, int_max_gpus = -1 WHERE pk_job = ${farm.job}`;
    const r = await start();
    await r.service.recompute();
    const [sub] =
      await db.sql`SELECT int_cores, int_gpus, int_burst FROM subscription WHERE pk_show = ${farm.show}`;
    expect(sub).toEqual({ int_cores: 800, int_gpus: 2, int_burst: '500' });
    const [job] =
      await db.sql`SELECT int_cores, int_gpus, int_max_cores, int_max_gpus FROM job_resource WHERE pk_job = ${farm.job}`;
    expect(job).toEqual({ int_cores: '800', int_gpus: 2, int_max_cores: -1, int_max_gpus: -1 });
    const [folder] =
      await db.sql`SELECT int_cores, int_gpus FROM folder_resource WHERE pk_folder = ${farm.folder}`;
    expect(folder).toEqual({ int_cores: 800, int_gpus: 2 });
    const [layer] =
      await db.sql`SELECT sum(int_cores)::int AS c FROM layer_resource WHERE pk_job = ${farm.job}`;
    expect(layer!.c).toBe(800);
    const [point] = await db.sql`SELECT int_cores FROM point WHERE pk_show = ${farm.show}`;
    expect(point!.int_cores).toBe(800);
  });

  it('drops and counts malformed payloads while good ones around them apply', async () => {
    const farm = await createSmallFarm(db.sql, { managed: true, burst: 10 });
    const procs = [
      await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 200 }),
      await createProc(db.sql, { host: farm.host, job: farm.job, coresCenticores: 300 }),
    ];
    const r = await start();
    expect(counter(r, 'job', '', '', farm.job).cores).toBe(5);
    const bad = [
      'not json',
      '[]',
      '{"show":"x"}',
      JSON.stringify({ vertex: 'layer', id: 'x', max_cores: 1 }),
      'x'.repeat(7_900),
    ];
    // PostgreSQL itself refuses payloads of 8000 bytes or more, so too_long is a unit-test case.
    await releaseProcs(db.sql, [procs[0]!.id], 100);
    for (const payload of bad)
      await db.sql`SELECT pg_notify('acct_release', ${payload}), pg_notify('acct_limit_change', ${payload})`;
    await releaseProcs(db.sql, [procs[1]!.id], 100);
    await waitFor(() => counter(r, 'job', '', '', farm.job).cores === 0, {
      message: 'good releases applied',
    });
    expect(r.service.status().listener.dropped).toBe(bad.length * 2);
    const metrics = await r.metrics.registry.getSingleMetricAsString('cueacct_notifications_dropped_total');
    expect(metrics).toContain('channel="acct_release",reason="not_json"');
    expect(metrics).toContain('channel="acct_limit_change",reason="invalid"');
    expect(r.service.listenerConnected).toBe(true);
  });
});
