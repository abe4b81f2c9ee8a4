/**
 * `npm run bench`: every SPEC §4 metric, printed as one table (and, with BENCH_JSON=path,
 * written as JSON). The bench creates its own databases on the server of BENCH_ADMIN_URL,
 * else TEST_DATABASE_URL, else 127.0.0.1:5432, else a throwaway cluster, and drops them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createFarm, type FarmSpec } from '../../src/db/fixtures.js';
import { startCluster } from '../../src/embedded/cluster.js';
import { Metrics } from '../../src/observability/metrics.js';
import { StoreBookingService } from '../http/store-service.js';
import { serverAnswers } from '../../src/db/connection.js';
import { LOCAL_ADMIN_URL, createDatabase } from '../stress/harness.js';
import { BENCH_FARM, benchFarm } from './farm-bench.js';
import { benchLoopbackFloor } from './loopback-floor.js';
import { benchHttp, httpBenchFarm } from './http-bench.js';
import { benchReleases } from './release-bench.js';
import { benchState } from './state-bench.js';
import { benchStore } from './store-bench.js';

interface Row {
  metric: string;
  value: string;
  target: string;
  met: string;
}

const ROOT = (() => {
  for (let dir = path.dirname(fileURLToPath(import.meta.url)); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) throw new Error('no package.json above the bench');
  }
})();

/** The release farm: every proc its own job, so a release is identified by its job. */
const RELEASE_FARM: FarmSpec = {
  shows: 10,
  allocs: 5,
  foldersPerShow: 20,
  jobsPerFolder: 350,
  hostsPerAlloc: 20,
  procs: 70_000,
  burstCenticores: 1_000_000_000,
};

const rows: Row[] = [];
const json: Record<string, unknown> = {};

function n(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function ms(value: number | null): string {
  if (value === null || !Number.isFinite(value)) return 'n/a';
  return value < 10 ? `${value.toFixed(2)} ms` : `${n(value)} ms`;
}

function add(metric: string, value: string, target = '', met?: boolean): void {
  rows.push({ metric, value, target, met: met === undefined ? '' : met ? 'yes' : 'NO' });
}

function helpTime(binary: string, args: string[]): number {
  const times: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = performance.now();
    const r = spawnSync(binary, args, { cwd: '/', stdio: 'ignore', env: { PATH: '/usr/bin:/bin' } });
    if (r.status !== 0) throw new Error(`${binary} ${args.join(' ')} exited ${r.status}`);
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[3]!;
}

async function main(): Promise<void> {
  const seconds = Number(process.env.BENCH_SECONDS ?? 2);
  let adminUrl = process.env.BENCH_ADMIN_URL || process.env.TEST_DATABASE_URL;
  let stopCluster = async () => {};
  if (!adminUrl && (await serverAnswers(LOCAL_ADMIN_URL, 2_000))) adminUrl = LOCAL_ADMIN_URL;
  if (!adminUrl) {
    const cluster = await startCluster({});
    adminUrl = cluster.url;
    stopCluster = cluster.stop;
  }
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    postgres: '',
  };

  try {
    // ---- the store ------------------------------------------------------------------------
    const store = benchStore();
    json.store = store;
    add(
      'Store.book + confirm (in process)',
      `${n(store.pairsPerSecond)} pairs/s`,
      '>= 2,000,000/s',
      store.pairsPerSecond >= 2_000_000,
    );
    add('Store.applyRelease (in process)', `${n(store.releasesPerSecond)}/s`);
    add('LeaseBook add + take by id (in process)', `${n(store.leasePairsPerSecond)} pairs/s`);
    const state = await benchState();
    json.state = state;
    add(
      `GET /v1/state top=5000 sort=name, ${n(state.vertices)} vertices (in process): read; longest stall`,
      `${ms(state.topReadMs)}; ${ms(state.topStallMs)}`,
      'stall ~10 ms',
    );
    add(
      `GET /v1/state every page of 5,000 (${state.pages} pages, in process): read; longest stall`,
      `${ms(state.pagedReadMs)}; ${ms(state.pagedStallMs)}`,
      'stall ~10 ms',
    );

    const loopback = await benchLoopbackFloor(seconds);
    json.loopback = loopback;

    // ---- farm scale: bootstrap, recompute, RSS, HTTP against the daemon ---------------------
    const db = await createDatabase(adminUrl);
    try {
      const [version] = await db.sql<{ v: string }[]>`SELECT current_setting('server_version') AS v`;
      machine.postgres = version!.v;
      const t0 = performance.now();
      const ids = await createFarm(db.sql, BENCH_FARM);
      await db.sql`ANALYZE`;
      const farmMs = performance.now() - t0;
      const farm = await benchFarm(db.url, ids, BENCH_FARM, seconds);
      json.farm = { ...farm, farmMs };
      const scale = '100k procs / 20k jobs / 2k folders / 500 subs';
      add(
        `HTTP book round-trips, 1 keep-alive client (daemon process)`,
        `${n(farm.http.bookRoundTripsPerSecond)}/s`,
        '>= 10,000/s',
        farm.http.bookRoundTripsPerSecond >= 10_000,
      );
      add(
        'HTTP book latency p50 / p99 (daemon process)',
        `${ms(farm.http.p50Ms)} / ${ms(farm.http.p99Ms)}`,
        'p99 < 5 ms',
        farm.http.p99Ms < 5,
      );
      add(
        'HTTP batch of 100 books (daemon process), one at a time',
        `${n(farm.http.batchBookingsPerSecond)} bookings/s`,
        '>= 200,000/s',
        farm.http.batchBookingsPerSecond >= 200_000,
      );
      if (farm.http.pipelinedBatchBookingsPerSecond !== null) {
        add(
          'HTTP batch of 100 books (daemon process), two in flight on the connection',
          `${n(farm.http.pipelinedBatchBookingsPerSecond)} bookings/s`,
          '>= 200,000/s',
          farm.http.pipelinedBatchBookingsPerSecond >= 200_000,
        );
      }
      const many = farm.clients;
      for (const row of many.rows) {
        const target = row.clients === 16 ? '>= 150,000/s, p99 < 5 ms' : '';
        add(
          `Library clients: ${row.clients} process(es) × ${row.concurrencyPerClient} booking loops (daemon)`,
          `${n(row.bookingsPerSecond)} bookings/s, p50 ${ms(row.p50Ms)} / p99 ${ms(row.p99Ms)} (${row.opsPerBatch.toFixed(0)} per batch; CPU per booking: daemon ${row.daemonCpuUsPerBooking.toFixed(1)} µs + clients ${row.clientsCpuUsPerBooking.toFixed(1)} µs)`,
          target,
          row.clients === 16 ? row.bookingsPerSecond >= 150_000 && row.p99Ms < 5 : undefined,
        );
      }
      add(
        'Library client, a single booking in flight (daemon)',
        `${n(many.single.bookingsPerSecond)} bookings/s, p50 ${ms(many.single.p50Ms)} / p99 ${ms(many.single.p99Ms)}`,
        'p99 < 1 ms',
        many.single.p99Ms < 1,
      );
      add(
        '  reference: raw TCP round trip between two processes, p50 / p99',
        `${ms(loopback.p50Ms)} / ${ms(loopback.p99Ms)}`,
      );
      add(
        'Same, during recompute passes back to back (daemon)',
        `p50 ${ms(many.singleDuringRecompute.p50Ms)} / p99 ${ms(many.singleDuringRecompute.p99Ms)} / max ${ms(many.singleDuringRecompute.maxMs)} (${many.singleDuringRecompute.passes} passes)`,
        'no booking waits behind a recompute',
      );
      add(
        'Longest event-loop stall during the first recompute after bootstrap (in process)',
        ms(farm.recomputeFirstStallMs),
        '< 10 ms',
        farm.recomputeFirstStallMs < 10,
      );
      add(
        '  same, split: GC pauses taken out; longest GC pause (count)',
        `${ms(farm.recomputeFirstStalls.maxWithoutGcMs)}; ${ms(farm.recomputeFirstStalls.maxGcMs)} (${farm.recomputeFirstStalls.gcPauses})`,
      );
      add(
        `Recompute pass, ${scale} (PG included)`,
        `${ms(farm.recomputeMedianMs)} (max ${ms(farm.recomputeMaxMs)}; first after bootstrap ${ms(farm.recomputeFirstMs)})`,
        '< 1 s',
        farm.recomputeMedianMs < 1_000 && farm.recomputeMaxMs < 1_000,
      );
      add(
        'Longest event-loop stall during a steady recompute pass (in process)',
        ms(farm.recomputeStallMs),
        '< 10 ms',
        farm.recomputeStallMs < 10,
      );
      add(
        '  same, split: GC pauses taken out; longest GC pause (count)',
        `${ms(farm.recomputeSteadyStalls.maxWithoutGcMs)}; ${ms(farm.recomputeSteadyStalls.maxGcMs)} (${farm.recomputeSteadyStalls.gcPauses})`,
      );
      add('  reference: longest gap of an idle process during those passes', ms(farm.idleSiblingMaxMs));
      add(`Bootstrap at that scale (in process)`, ms(farm.bootstrapMs), '< 3 s', farm.bootstrapMs < 3_000);
      add(
        `Bootstrap at that scale (daemon; spawn → ready)`,
        `${ms(farm.daemonBootstrapMs)} (${ms(farm.daemonReadyMs)})`,
        '< 3 s',
        farm.daemonBootstrapMs !== null && farm.daemonBootstrapMs < 3_000,
      );
      add(
        'Daemon RSS at that scale (VmRSS; peak VmHWM)',
        `${farm.rssMiB.toFixed(0)} MiB (peak ${farm.peakRssMiB.toFixed(0)} MiB)`,
        '< 250 MB',
        farm.peakRssMiB * 1.048576 < 250,
      );
      add('Farm generation (createFarm + ANALYZE)', ms(farmMs));
    } finally {
      await db.drop();
    }

    // ---- HTTP in process (reference: the HTTP layer over the bare store) ---------------------
    const httpFarm = httpBenchFarm();
    const inProcess = await benchHttp(
      new StoreBookingService(httpFarm.caps),
      new Metrics({ defaultMetrics: false }),
      { seconds },
    );
    json.httpInProcess = inProcess;
    add(
      'HTTP book round-trips (in-process server over a bare store; reference)',
      `${n(inProcess.bookRoundTripsPerSecond)}/s, p99 ${ms(inProcess.p99Ms)}`,
    );
    add('HTTP batch of 100 books (same; reference)', `${n(inProcess.batchBookingsPerSecond)} bookings/s`);

    // ---- release NOTIFY → applied ------------------------------------------------------------
    const rdb = await createDatabase(adminUrl);
    try {
      await createFarm(rdb.sql, RELEASE_FARM);
      await rdb.sql`ANALYZE`;
      const releases = await benchReleases(rdb.url, rdb.sql, {
        targetRate: 10_000,
        pacedSeconds: 3,
        maxReleases: 30_000,
      });
      json.releases = releases;
      const { paced, max } = releases;
      add(
        'Release NOTIFY → applied, paced at 10,000/s (100 per transaction)',
        `${n(paced.appliedPerSecond)}/s applied (${n(paced.applied)} of ${n(paced.released)})`,
        '>= 10,000/s sustained',
        paced.appliedPerSecond >= 10_000 * 0.97 && paced.applied === paced.released,
      );
      add(
        'Commit-to-applied latency p50 / p99 at 10,000/s',
        `${ms(paced.p50Ms)} / ${ms(paced.p99Ms)} (max ${ms(paced.maxMs)})`,
        'p99 < 50 ms',
        paced.p99Ms < 50,
      );
      add(
        'Release NOTIFY → applied, producer unpaced (3 sessions)',
        `${n(max.appliedPerSecond)}/s (p99 ${ms(max.p99Ms)})`,
        '',
        max.appliedPerSecond >= 10_000,
      );
    } finally {
      await rdb.drop();
    }

    // ---- start-up of the packaged binary ------------------------------------------------------
    const binary = path.join(ROOT, 'dist', 'cueacct');
    if (existsSync(binary)) {
      const help = helpTime(binary, ['--help']);
      json.helpMs = help;
      add('`cueacct --help` from dist/cueacct (median of 7)', ms(help), '< 300 ms', help < 300);
      const size = statSync(binary).size;
      json.binaryBytes = size;
      add('dist/cueacct size', `${(size / 2 ** 20).toFixed(1)} MiB`);
    } else {
      add('`cueacct --help` from dist/cueacct', 'not built (npm run package)', '< 300 ms');
    }
    const dev = helpTime(process.execPath, [path.join(ROOT, 'bin', 'run.js'), '--help']);
    add('`node bin/run.js --help` (source tree; reference)', ms(dev));
  } finally {
    await stopCluster();
  }

  console.log(
    `machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}, PostgreSQL ${machine.postgres}`,
  );
  console.table(rows);
  if (process.env.BENCH_JSON)
    writeFileSync(process.env.BENCH_JSON, JSON.stringify({ machine, rows, ...json }, null, 2));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
