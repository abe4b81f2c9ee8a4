/**
 * Many schedulers, one daemon (issue 14): 1, 4 and 16 client processes, each an
 * {@link AccountingClient} with several booking loops (so its micro-batching coalesces them),
 * against one `cueacct serve` process on the farm-scale database. Reports aggregate bookings/s,
 * p50/p99 per booking and the CPU the daemon and the clients spend per booking; then one
 * client with a single booking in flight, alone and while the daemon runs recompute passes back
 * to back (the booking p99 *during* recomputes).
 *
 * BENCH_CPU_PROF=dir writes a CPU profile of the daemon (node --cpu-prof) into dir.
 */
import { fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BookingRequest } from '../../src/core/types.js';
import { AccountingClient } from '../../src/client/index.js';
import type { Daemon } from '../support/daemon.js';
import type { SchedulerClientInput, SchedulerClientResult } from './scheduler-client.js';

const CLIENT = fileURLToPath(new URL('./scheduler-client.js', import.meta.url));

export interface ClientsRow {
  clients: number;
  concurrencyPerClient: number;
  bookingsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  opsPerBatch: number;
  /** CPU (user + system) per booking inside the window: the daemon's, and all clients' together. */
  daemonCpuUsPerBooking: number;
  clientsCpuUsPerBooking: number;
}

/** USER_HZ: the unit of /proc/<pid>/stat times (100 on Linux). */
const CLOCK_TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
function cpuSeconds(pid: number): number {
  try {
    // After "pid (comm) ": state is field 0, utime and stime are fields 11 and 12.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

export interface ClientsBenchResult {
  rows: ClientsRow[];
  /** One client, one booking in flight, while nothing else runs. */
  single: ClientsRow;
  /** The same while the daemon runs recompute passes back to back. */
  singleDuringRecompute: ClientsRow & { passes: number };
}

async function runClients(
  daemon: Pick<Daemon, 'url' | 'pid'>,
  requests: BookingRequest[],
  clients: number,
  concurrency: number,
  seconds: number,
): Promise<ClientsRow> {
  // Room for every process to start and warm up under the same load before the window opens.
  const startAt = Date.now() + 2_000 + clients * 250;
  // CPU used inside the window (its edges trimmed by 0.1 s), by the daemon and by all clients.
  const pids: number[] = [];
  const usage = () => ({
    daemon: cpuSeconds(daemon.pid),
    clients: pids.reduce((t, p) => t + cpuSeconds(p), 0),
  });
  const windowSeconds = seconds - 0.2;
  let atStart = { daemon: 0, clients: 0 };
  let atEnd = { daemon: 0, clients: 0 };
  const timers = [
    setTimeout(() => (atStart = usage()), startAt - Date.now() + 100),
    setTimeout(() => (atEnd = usage()), startAt - Date.now() + 100 + windowSeconds * 1000),
  ];
  const results = await Promise.all(
    Array.from({ length: clients }, (_, i) => {
      const child = fork(CLIENT, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      pids.push(child.pid!);
      const input: SchedulerClientInput = {
        url: daemon.url,
        requests,
        concurrency,
        seconds,
        startAt,
        offset: Math.floor((i * requests.length) / clients),
      };
      child.send(input);
      return new Promise<SchedulerClientResult>((resolve, reject) => {
        child.once('message', (result) => resolve(result as SchedulerClientResult));
        child.once('exit', (code) => {
          if (code !== 0) reject(new Error(`bench client exited ${code}`));
        });
      });
    }),
  );
  for (const timer of timers) clearTimeout(timer);
  const bookings = results.reduce((sum, r) => sum + r.bookings, 0);
  const longest = Math.max(...results.map((r) => r.seconds));
  const batches = results.reduce((sum, r) => sum + r.batches, 0);
  const bookingsInWindow = (bookings / longest) * windowSeconds;
  // Per-client percentiles, combined conservatively: the worst client's p50/p99.
  return {
    clients,
    concurrencyPerClient: concurrency,
    bookingsPerSecond: bookings / longest,
    p50Ms: Math.max(...results.map((r) => r.p50Ms)),
    p99Ms: Math.max(...results.map((r) => r.p99Ms)),
    maxMs: Math.max(...results.map((r) => r.maxMs)),
    opsPerBatch: batches === 0 ? 0 : bookings / batches,
    daemonCpuUsPerBooking: ((atEnd.daemon - atStart.daemon) / bookingsInWindow) * 1e6,
    clientsCpuUsPerBooking: ((atEnd.clients - atStart.clients) / bookingsInWindow) * 1e6,
  };
}

export async function benchClients(
  daemon: Pick<Daemon, 'url' | 'pid'>,
  requests: BookingRequest[],
  seconds = 2,
): Promise<ClientsBenchResult> {
  const rows: ClientsRow[] = [];
  for (const clients of [1, 4, 16]) {
    rows.push(await runClients(daemon, requests, clients, 64, seconds));
  }
  const single = await runClients(daemon, requests, 1, 1, seconds);

  // Recompute passes back to back while one client books one at a time.
  const admin = new AccountingClient({ url: daemon.url, timeoutMs: 120_000 });
  let passes = 0;
  let stop = false;
  const recomputing = (async () => {
    while (!stop) {
      await admin.admin('recompute');
      passes++;
    }
  })();
  try {
    const during = await runClients(daemon, requests, 1, 1, Math.max(seconds, 4));
    return { rows, single, singleDuringRecompute: { ...during, passes: passes + 1 } };
  } finally {
    stop = true;
    await recomputing;
    admin.close();
  }
}
