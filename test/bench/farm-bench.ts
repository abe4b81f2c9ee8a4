/**
 * Farm-scale benchmarks (SPEC §4) on a database holding 100k procs / 20k jobs / 2k folders /
 * 500 subscriptions: the bootstrap and the recompute pass (PostgreSQL included) of the
 * accounting service in process, then the real daemon process on the same farm — its own
 * bootstrap, its RSS after a recompute, and its HTTP booking API from one keep-alive client.
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import type { BookingRequest } from '../../src/core/types.js';
import type { FarmIds, FarmSpec } from '../../src/db/fixtures.js';
import { ApiClient } from '../../src/simulate/index.js';
import { startDaemon } from '../support/daemon.js';
import { startService } from '../support/service.js';
import { benchClients, type ClientsBenchResult } from './clients-bench.js';
import { runHttpClient } from './http-bench.js';
import { StallProbe, type StallReport } from './stall-probe.js';

const IDLE_SIBLING = fileURLToPath(new URL('./idle-sibling.js', import.meta.url));

/** 20 shows × 25 allocs = 500 subscriptions; 2,000 folders; 20,000 jobs; 1,000 hosts; 100,000 procs. */
export const BENCH_FARM: FarmSpec = {
  shows: 20,
  allocs: 25,
  foldersPerShow: 100,
  jobsPerFolder: 10,
  hostsPerAlloc: 40,
  procs: 100_000,
  depts: 10,
  // Room for every booking the HTTP benchmark makes (it books without confirming).
  burstCenticores: 1_000_000_000,
  jobMaxCoresCenticores: -1,
  jobMaxGpus: -1,
};

export interface FarmBenchResult {
  bootstrapMs: number;
  /** First pass after the bootstrap (rewrites every PG accounting row) and the median of the next ones. */
  recomputeFirstMs: number;
  recomputeMedianMs: number;
  recomputeMaxMs: number;
  /** Longest event-loop stall of the in-process service during the steady recompute passes (bookings and releases wait that long). */
  recomputeStallMs: number;
  /** The same during the first pass after the bootstrap (it rewrites every PG accounting row). */
  recomputeFirstStallMs: number;
  /** The stalls of the first and the steady passes split by cause (stall-probe.ts). */
  recomputeFirstStalls: StallReport;
  recomputeSteadyStalls: StallReport;
  /** Longest gap of an idle process on the same machine during the steady passes (idle-sibling.ts). */
  idleSiblingMaxMs: number;
  daemonBootstrapMs: number | null;
  daemonReadyMs: number;
  rssMiB: number;
  peakRssMiB: number;
  /** Many scheduler processes through the client library (issue 14). */
  clients: ClientsBenchResult;
  http: {
    bookRoundTripsPerSecond: number;
    p50Ms: number;
    p99Ms: number;
    batchBookingsPerSecond: number;
    pipelinedBatchBookingsPerSecond: number | null;
    appliedFraction: number;
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function statusKiB(pid: number, field: string): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  if (match === null) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]);
}

/** Requests that match the farm's structure (FarmSpec's index arithmetic), one core each. */
export function farmRequests(ids: FarmIds, spec: FarmSpec, count = 4_096): BookingRequest[] {
  const requests: BookingRequest[] = [];
  for (let i = 0; i < count; i++) {
    const j = (i * 7_919) % ids.jobs.length;
    const f = Math.floor(j / spec.jobsPerFolder);
    const s = Math.floor(f / spec.foldersPerShow);
    requests.push({
      show: ids.shows[s]!,
      alloc: ids.allocs[i % spec.allocs]!,
      folder: ids.folders[f]!,
      job: ids.jobs[j]!,
      cores: 1,
      gpus: 0,
    });
  }
  return requests;
}

export async function benchFarm(
  url: string,
  ids: FarmIds,
  spec: FarmSpec = BENCH_FARM,
  httpSeconds = 2,
): Promise<FarmBenchResult> {
  // ---- in process: bootstrap and recompute --------------------------------------------------
  const running = await startService(url);
  // Measures from the end of the bootstrap: the catch-up pass starts with the listener.
  let bootstrapMs: number;
  const recomputes: number[] = [];
  // 1 ms resolution: the target (< 10 ms) is close to the old 5 ms sampling step.
  const stall = monitorEventLoopDelay({ resolution: 1 });
  const firstStall = monitorEventLoopDelay({ resolution: 1 });
  const firstProbe = new StallProbe();
  const steadyProbe = new StallProbe();
  const sibling = await idleSibling();
  let recomputeFirstStalls: StallReport;
  let recomputeSteadyStalls: StallReport;
  let idleSiblingMaxMs: number;
  firstStall.enable();
  firstProbe.start();
  try {
    const histogram = await running.metrics.passDuration.get();
    const sum = histogram.values.find((v) => v.metricName?.endsWith('_sum') && v.labels.pass === 'bootstrap');
    bootstrapMs = (sum?.value ?? Number.NaN) * 1000;
    // The first pass is the catch-up the service starts with its listener (it rewrites every PG
    // accounting row); the next ones are the steady state.
    for (let i = 0; i < 6; i++) {
      if (i === 1) {
        firstStall.disable();
        recomputeFirstStalls = firstProbe.stop();
        stall.enable();
        steadyProbe.start();
        sibling.start();
      }
      const t0 = performance.now();
      await running.service.recompute();
      recomputes.push(performance.now() - t0);
    }
    stall.disable();
    recomputeSteadyStalls = steadyProbe.stop();
    idleSiblingMaxMs = (await sibling.stop()).maxMs;
  } finally {
    sibling.kill();
    await running.stop();
  }

  // ---- the daemon process: bootstrap, RSS, HTTP ----------------------------------------------
  const started = performance.now();
  const daemon = await startDaemon({
    databaseUrl: url,
    args: ['--recompute-interval', '3600', '--reseed-interval', '3600', '--shows-interval', '3600'],
    env: { CUEACCT_LOG_LEVEL: 'info' },
    // BENCH_CPU_PROF=dir: a CPU profile of the daemon, written when it stops.
    ...(process.env.BENCH_CPU_PROF
      ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] }
      : {}),
    timeoutMs: 60_000,
  });
  const api = new ApiClient({ url: daemon.url, timeoutMs: 60_000 });
  try {
    const deadline = Date.now() + 60_000;
    while ((await api.get('/readyz')).status !== 200) {
      if (Date.now() > deadline)
        throw new Error(`the bench daemon did not become ready:\n${daemon.output().slice(-2_000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const daemonReadyMs = performance.now() - started;
    const boot = /"msg":"bootstrap complete"/.test(daemon.output())
      ? /"ms":(\d+)[^\n]*"msg":"bootstrap complete"|"msg":"bootstrap complete"[^\n]*"ms":(\d+)/.exec(
          daemon.output(),
        )
      : null;
    const daemonBootstrapMs = boot === null ? null : Number(boot[1] ?? boot[2]);
    const recompute = await api.post('/v1/admin/recompute');
    if (recompute.status !== 200) throw new Error(`bench daemon recompute answered ${recompute.status}`);
    const rssMiB = statusKiB(daemon.pid, 'VmRSS') / 1024;
    const peakRssMiB = statusKiB(daemon.pid, 'VmHWM') / 1024;
    const { port, hostname } = new URL(daemon.url);
    const http = await runHttpClient(
      { host: hostname, port: Number(port) },
      { seconds: httpSeconds, batchSize: 100, requests: farmRequests(ids, spec) },
    );
    const clients = await benchClients(daemon, farmRequests(ids, spec), httpSeconds);
    return {
      clients,
      bootstrapMs,
      recomputeFirstMs: recomputes[0]!,
      recomputeMedianMs: median(recomputes.slice(1)),
      recomputeMaxMs: Math.max(...recomputes.slice(1)),
      recomputeStallMs: stall.max / 1e6,
      recomputeFirstStallMs: firstStall.max / 1e6,
      recomputeFirstStalls: recomputeFirstStalls!,
      recomputeSteadyStalls: recomputeSteadyStalls!,
      idleSiblingMaxMs: idleSiblingMaxMs!,
      daemonBootstrapMs,
      daemonReadyMs,
      rssMiB,
      peakRssMiB,
      http,
    };
  } finally {
    api.close();
    await daemon.stop();
  }
}

/** Fork the idle sibling (idle-sibling.ts) and wait until it listens. */
async function idleSibling(): Promise<{ start(): void; stop(): Promise<StallReport>; kill(): void }> {
  const child = fork(IDLE_SIBLING, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise((resolve) => child.once('message', resolve));
  return {
    start: () => child.send('start'),
    stop: () =>
      new Promise<StallReport>((resolve) => {
        child.once('message', (report) => resolve(report as StallReport));
        child.send('stop');
      }),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill();
    },
  };
}
