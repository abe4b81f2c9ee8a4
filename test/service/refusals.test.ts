/**
 * "Why isn't my job getting cores?" against a real PostgreSQL: per-vertex refusals in the
 * state API, the detail of one vertex (the caps in its path, which binds), the per-pool
 * metrics, and the service's log lines (one `part` key each).
 */
import { Writable } from 'node:stream';
import type { Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { registerPoolMetrics } from '../../src/observability/pool-metrics.js';
import { waitFor } from '../support/db.js';
import { servicePerTest } from '../support/hooks.js';
import { bookingFor, createSmallFarm, type RunningService } from '../support/service.js';

const { db, start: startQuiet } = servicePerTest();

/** Ticks are driven by the test (an hour between automatic samples). */
function start(logger?: Logger): Promise<RunningService> {
  return startQuiet({ historySampleMs: 3_600_000 }, logger);
}

/** burst 10, folder 8, job 6; 5 booked; then 3 job, 1 folder and 2 subscription refusals. */
async function refusingFarm(r: RunningService, showName: string) {
  const farm = await createSmallFarm(db.sql, {
    managed: true,
    burst: 10,
    folderCores: 8,
    jobCores: 6,
    showName,
  });
  await r.service.refreshShows();
  // The baseline tick, before any refusal, a sample period ago (the test drives the ticks).
  r.service.sampleHistory(Date.now() - 5_000);
  expect(r.service.book(bookingFor(farm, 5))).toMatchObject({ result: 'applied' });
  for (let i = 0; i < 3; i++) expect(r.service.book(bookingFor(farm, 2))).toMatchObject({ table: 'job' });
  expect(r.service.book(bookingFor(farm, 4))).toMatchObject({ table: 'folder' });
  for (let i = 0; i < 2; i++)
    expect(r.service.book(bookingFor(farm, 6))).toMatchObject({ table: 'subscription' });
  const [alloc] = await db.sql<
    { name: string }[]
  >`SELECT str_name AS name FROM alloc WHERE pk_alloc = ${farm.alloc}`;
  return { ...farm, allocName: alloc!.name, subKey: `${farm.show}/${farm.alloc}` };
}

describe('refusals per pool', () => {
  it('the state API returns each vertex its refusals by table, rates and time, and sorts the most blocked first', async () => {
    const r = await start();
    const farm = await refusingFarm(r, 'refusing-show');
    const state = await r.service.state({ top: 100, sort: 'blocked', show: farm.show });
    expect(state.vertices.map((v) => [v.kind, v.refusals?.total])).toEqual([
      ['job', 3],
      ['subscription', 2],
      ['folder', 1],
    ]);
    const [job, sub, folder] = state.vertices;
    expect(job!.refusals!.by_table).toEqual({ job: 3, job_gpus: 0 });
    expect(sub!.refusals!.by_table).toEqual({ subscription: 2 });
    expect(folder!.refusals!.by_table).toEqual({ folder: 1, folder_gpus: 0 });
    expect(job!.refusals!.per_s_1m).toBeGreaterThan(0);
    expect(job!.refusals!.per_s_5m).toBeGreaterThan(0);
    expect(Date.parse(job!.refusals!.last_at!)).toBeGreaterThan(Date.now() - 60_000);
    // A tick stamps them; a vertex that never refused reads zero.
    r.service.sampleHistory();
    const again = (await r.service.state({ vertex: 'job', show: farm.show })).vertices[0]!;
    expect(again.refusals!.last_at).not.toBeNull();
  });

  it('refusals right after bootstrap, before the first timer tick, already have a rate', async () => {
    // Adversarial timing: the sample timer's first tick is an hour away; the bootstrap's own
    // tick is the only baseline.
    const farm = await createSmallFarm(db.sql, { managed: true, burst: 10, jobCores: 2 });
    const r = await start();
    expect(r.service.book(bookingFor(farm, 2))).toMatchObject({ result: 'applied' });
    for (let i = 0; i < 4; i++) expect(r.service.book(bookingFor(farm, 1))).toMatchObject({ table: 'job' });
    const job = (await r.service.state({ vertex: 'job', show: farm.show })).vertices[0]!;
    expect(job.refusals!.total).toBe(4);
    expect(job.refusals!.per_s_1m).toBeGreaterThan(0);
    expect(job.refusals!.last_at).not.toBeNull();
  });

  it('the detail of a job lists the subscription, folder and job caps, names the one refusing, and carries its history', async () => {
    const r = await start();
    const farm = await refusingFarm(r, 'detail-show');
    r.service.sampleHistory();
    const detail = await r.service.vertexDetail('job', farm.job);
    expect(detail).toBeDefined();
    expect(detail!.path.map((v) => [v.kind, v.key, `${v.cores}/${v.max_cores}`])).toEqual([
      ['subscription', farm.subKey, '5/10'],
      ['folder', farm.folder, '5/8'],
      ['job', farm.job, '5/6'],
    ]);
    expect(detail!.binding).toEqual({ key: farm.job, table: 'job', reason: 'refusing' });
    expect(detail!.history.length).toBeGreaterThanOrEqual(2);
    expect(detail!.history.at(-1)!.utilization).toBeCloseTo(5 / 6, 5);
    expect(detail!.history.some((p) => p.refusals_per_s > 0)).toBe(true);

    const folderDetail = await r.service.vertexDetail('folder', farm.folder);
    expect(folderDetail!.path.map((v) => v.kind)).toEqual(['subscription', 'folder']);
    expect(await r.service.vertexDetail('job', 'no-such-job')).toBeUndefined();
    expect(await r.service.vertexDetail('subscription', farm.subKey)).toMatchObject({
      binding: { key: farm.subKey, table: 'subscription', reason: 'refusing' },
    });
  });

  it('without refusals the fullest enforced cap binds', async () => {
    const r = await start();
    const farm = await createSmallFarm(db.sql, { managed: true, burst: 20, folderCores: 8, jobCores: 16 });
    await r.service.refreshShows();
    expect(r.service.book(bookingFor(farm, 7))).toMatchObject({ result: 'applied' });
    const detail = await r.service.vertexDetail('job', farm.job);
    expect(detail!.binding).toEqual({ key: farm.folder, table: 'folder', reason: 'fullest' });
  });

  it('/metrics carries per-subscription booked cores, burst and refusals, and per-show refusals by table, by name', async () => {
    const r = await start();
    const farm = await refusingFarm(r, 'metrics-show');
    registerPoolMetrics(r.metrics.registry, () => r.service.poolSnapshot());
    const text = await r.metrics.registry.metrics();
    const labels = `show="metrics-show",alloc="${farm.allocName}"`;
    expect(text).toContain(`cueacct_subscription_booked_cores{${labels}} 5`);
    expect(text).toContain(`cueacct_subscription_burst_cores{${labels}} 10`);
    expect(text).toContain(`cueacct_subscription_refusals_total{${labels}} 2`);
    expect(text).toContain('cueacct_show_refusals_total{show="metrics-show",table="job"} 3');
    expect(text).toContain('cueacct_show_refusals_total{show="metrics-show",table="folder"} 1');
    expect(text).toContain('cueacct_show_refusals_total{show="metrics-show",table="subscription"} 2');
    // A table that never refused has no series (bounded cardinality: only tables that refused).
    expect(text).not.toContain('table="job_gpus"');
  });

  it('with the per-subscription series turned off, only the per-show refusals remain', async () => {
    const r = await start();
    await refusingFarm(r, 'quiet-show');
    registerPoolMetrics(r.metrics.registry, () => r.service.poolSnapshot(), { perSubscription: false });
    const text = await r.metrics.registry.metrics();
    expect(text).not.toContain('cueacct_subscription_');
    expect(text).toContain('cueacct_show_refusals_total{show="quiet-show",table="job"} 3');
  });

  it('a listener log line carries one part key (its own), not the service’s as well', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(
          ...chunk
            .toString('utf8')
            .split('\n')
            .filter((l) => l !== ''),
        );
        done();
      },
    });
    await start(createLogger({ level: 'info', pretty: false, destination }));
    await waitFor(() => lines.some((l) => l.includes('listener connected')), {
      message: 'listener log line',
    });
    const line = lines.find((l) => l.includes('listener connected'))!;
    expect(line.match(/"part":/g)).toHaveLength(1);
    expect(JSON.parse(line)).toMatchObject({ part: 'listener' });
    for (const l of lines) expect(l.match(/"part":/g)?.length ?? 0).toBeLessThanOrEqual(1);
  });
});
