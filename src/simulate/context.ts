/** State shared by the simulated scheduler's workers and the simulated Cuebot of one run. */
import type { Sql } from 'postgres';
import { now, Random } from './clock.js';
import type { FarmView, ReleasableProc } from './farm.js';
import type { ApiClient } from './http-client.js';
import { Latencies } from './stats.js';
import type {
  BookingRecord,
  CapChangeRecord,
  RejectionRecord,
  ReleaseRecord,
  SimulationCounts,
  SimulationOptions,
} from './types.js';

/** Options with every default filled in. */
export interface ResolvedOptions {
  durationMs: number;
  record: boolean;
  maxBookings: number;
  coreMultiplier: number;
  workers: number;
  rate: number;
  batchSize: number;
  cores: readonly [number, number];
  gpuShare: number;
  gpus: readonly [number, number];
  rollbackShare: number;
  abandonShare: number;
  releaseRate: number;
  releaseBatch: number;
  releaseMinAgeMs: number;
  releaseExisting: boolean;
  silentReleaseShare: number;
  capChangeRate: number;
  capChangeFactor: readonly [number, number];
  seed: number;
  requestTimeoutMs: number;
}

export function resolveOptions(options: SimulationOptions): ResolvedOptions {
  const rate = options.rate ?? 200;
  const resolved: ResolvedOptions = {
    durationMs: options.durationMs,
    record: options.record ?? true,
    maxBookings: options.maxBookings ?? Number.POSITIVE_INFINITY,
    coreMultiplier: options.coreMultiplier ?? 100,
    workers: options.workers ?? 1,
    rate,
    batchSize: options.batchSize ?? 10,
    cores: options.cores ?? [1, 4],
    gpuShare: options.gpuShare ?? 0.1,
    gpus: options.gpus ?? [1, 2],
    rollbackShare: options.rollbackShare ?? 0.05,
    abandonShare: options.abandonShare ?? 0,
    releaseRate: options.releaseRate ?? rate,
    releaseBatch: options.releaseBatch ?? 5,
    releaseMinAgeMs: options.releaseMinAgeMs ?? 0,
    releaseExisting: options.releaseExisting ?? true,
    silentReleaseShare: options.silentReleaseShare ?? 0,
    capChangeRate: options.capChangeRate ?? 0.2,
    capChangeFactor: options.capChangeFactor ?? [0.5, 1.5],
    seed: options.seed ?? Math.floor(Math.random() * 2 ** 31),
    requestTimeoutMs: options.requestTimeoutMs ?? 10_000,
  };
  const problems: string[] = [];
  if (resolved.durationMs === Number.POSITIVE_INFINITY) {
    if (options.signal === undefined) problems.push('durationMs: Infinity needs a signal to stop the run');
    if (resolved.record)
      problems.push('durationMs: Infinity needs record: false (records grow without bound)');
  } else if (!(
    Number.isFinite(resolved.durationMs) &&
    resolved.durationMs > 0 &&
    resolved.durationMs <= 2 ** 31 - 1
  )) {
    problems.push('durationMs must be > 0 and at most 2^31-1 ms, or Infinity');
  }
  if (!(Number.isInteger(resolved.workers) && resolved.workers >= 1))
    problems.push('workers must be an integer >= 1');
  if (!(Number.isInteger(resolved.batchSize) && resolved.batchSize >= 1))
    problems.push('batchSize must be an integer >= 1');
  if (!(resolved.rate >= 0)) problems.push('rate must be >= 0');
  if (!(resolved.releaseRate >= 0)) problems.push('releaseRate must be >= 0');
  if (!(Number.isInteger(resolved.releaseBatch) && resolved.releaseBatch >= 1))
    problems.push('releaseBatch must be an integer >= 1');
  for (const [name, [lo, hi]] of [
    ['cores', resolved.cores],
    ['gpus', resolved.gpus],
  ] as const) {
    if (!(Number.isInteger(lo) && Number.isInteger(hi) && lo >= 0 && hi >= lo))
      problems.push(`${name} must be integers 0 <= min <= max`);
  }
  if (resolved.cores[0] < 1) problems.push('cores: min must be >= 1 (a proc reserves at least one core)');
  if (problems.length > 0) throw new Error(`runSimulation: ${problems.join('; ')}`);
  return resolved;
}

export function emptyCounts(): SimulationCounts {
  return {
    requested: 0,
    applied: 0,
    rejected: 0,
    rejectedBy: {},
    notManaged: 0,
    notReady: 0,
    confirmed: 0,
    rolledBack: 0,
    abandoned: 0,
    settleLeaseExpired: 0,
    settleUnknown: 0,
    procsInserted: 0,
    procInsertFailures: 0,
    released: 0,
    releasedSilently: 0,
    releaseFailures: 0,
    capChanges: 0,
    capChangeFailures: 0,
    transportErrors: 0,
    lostBookRequests: 0,
    unexpected: 0,
  };
}

const MAX_ERRORS = 20;

/** A list that keeps what is pushed, or (record: false) drops it. */
function recordList<T>(keep: boolean): T[] {
  const list: T[] = [];
  if (!keep) Object.defineProperty(list, 'push', { value: () => 0 });
  return list;
}

export class SimContext {
  readonly counts = emptyCounts();
  readonly bookings: BookingRecord[];
  readonly rejections: RejectionRecord[];
  readonly releases: ReleaseRecord[];
  readonly capChanges: CapChangeRecord[];
  readonly notReadyAt: number[];
  readonly errors: string[] = [];
  readonly latency = {
    book: new Latencies(),
    settle: new Latencies(),
    insert: new Latencies(),
    endToEnd: new Latencies(),
    release: new Latencies(),
  };
  /** Procs that exist and may be released (swap-remove by index). */
  readonly releasable: ReleasableProc[] = [];
  stopping = false;
  stoppedBy: 'duration' | 'signal' | 'max_bookings' = 'duration';
  private readonly stopWaiters = new Set<() => void>();

  constructor(
    readonly options: ResolvedOptions,
    readonly api: ApiClient,
    readonly sql: Sql,
    readonly farm: FarmView,
  ) {
    this.bookings = recordList(options.record);
    this.rejections = recordList(options.record);
    this.releases = recordList(options.record);
    this.capChanges = recordList(options.record);
    this.notReadyAt = recordList(options.record);
  }

  random(stream: number): Random {
    return new Random((this.options.seed * 7919 + stream * 104_729) >>> 0);
  }

  stop(reason: 'duration' | 'signal' | 'max_bookings'): void {
    if (this.stopping) return;
    this.stopping = true;
    this.stoppedBy = reason;
    for (const wake of this.stopWaiters) wake();
    this.stopWaiters.clear();
  }

  /** Sleep that ends early when the run stops. */
  pause(ms: number): Promise<void> {
    if (this.stopping || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.stopWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.stopWaiters.add(done);
    });
  }

  error(message: string): void {
    if (this.errors.length < MAX_ERRORS) this.errors.push(`${new Date(now()).toISOString()} ${message}`);
  }
}
