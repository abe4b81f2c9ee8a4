/**
 * The accounting service: the store kept in step with PostgreSQL (SPEC §1 "Feeds and
 * loops") behind the booking facade. The daemon is one user of it; a scheduler written in
 * TypeScript can run it in-process.
 */
import type { Logger } from 'pino';
import type { Sql } from 'postgres';
import pLimit from 'p-limit';
import type {
  ConfirmResponse,
  DrainShowResponse,
  LockStatus,
  RollbackResponse,
  StateResponse,
  StatusResponse,
  UndrainShowResponse,
  VertexDetailResponse,
} from '../api/types.js';
import { buildCapSet, buildSnapshot, snapshotSteps } from '../core/boundary.js';
import { runToEnd, type Steps } from '../core/steps.js';
import { Store, type BookOutcome } from '../core/store.js';
import {
  VERTEX_KINDS,
  type BookingRequest,
  type DriftReport,
  type LimitChange,
  type LimitTable,
  type VertexKind,
} from '../core/types.js';
import { isOverCap, refusalsByTable } from '../core/vertex.js';
import {
  capRows,
  capRowsOfKeys,
  jobFolder,
  managedShows,
  readAccounting,
  type NamedCapRows,
  type ShowRow,
  type UnknownKeys,
} from '../db/queries.js';
import { isUnreachableError } from '../db/errors.js';
import { rewriteAccountingTables } from '../db/rewrite.js';
import { StringInterner } from '../db/row-strings.js';
import type { Metrics } from '../observability/metrics.js';
import type { PoolSnapshot } from '../observability/pool-metrics.js';
import { DeadlineError, withDeadline } from './deadline.js';
import { SLICE_MS, runInSlices } from './event-loop.js';
import { ShowDrains } from './drain.js';
import { KeyResolver, folderKey, jobKey, subscriptionKey } from './key-resolver.js';
import { LeaseBook, insertMarginMs } from './leases.js';
import { Listener, type ListenerConnector, type ListenerHandlers } from './listener.js';
import { PassRecord } from './pass-record.js';
import { RefusalHistory } from './refusal-history.js';
import { seedStore } from './seed.js';
import { SingleFlightLoop } from './single-flight-loop.js';
import { VertexNames, stateResponse } from './state-view.js';
import type { BookResult, BookingService, DrainTimeout, StateQuery } from './types.js';
import { vertexDetail } from './vertex-detail.js';

export interface ServiceConfig {
  version: string;
  coreMultiplier: number;
  leaseMs: number;
  recomputeIntervalMs: number;
  reseedIntervalMs: number;
  showsIntervalMs: number;
  /** How long a recompute waits for its fence before failing the pass (counters stay high). */
  fenceTimeoutMs: number;
  /** Concurrent queries of one pass (PG table rewrites, flip seeds). */
  passConcurrency: number;
  /** Hard deadline of one recompute, reseed or shows pass: a stalled connection fails it (counted, retried). */
  passTimeoutMs: number;
  /** Listener liveness: a self-NOTIFY every interval must arrive within the timeout. */
  listenerProbeIntervalMs: number;
  listenerProbeTimeoutMs: number;
  /**
   * How long a booking of a key the store does not know waits for its read from the database
   * before it answers a retryable 503 `resolving` (issue 11 item 2).
   */
  resolveTimeoutMs: number;
  /** How often per-vertex refusals and utilization are sampled for rates and history; default 5 s. */
  historySampleMs?: number;
  /** How long a farm-wide walk holds the event loop between yields; default ~2 ms (tests: 0). */
  sliceMs?: number;
}

/**
 * The N=1 lock as the service sees it (the daemon's lease). Without one (in-process use)
 * the service serves whenever it is seeded and its listener follows the feeds.
 */
export interface LockView {
  /** Whether bookings may be accepted now: called on every booking, so it must be a cheap compare. */
  serving(): boolean;
  held(): boolean;
  status(): LockStatus;
}

export const DEFAULT_SERVICE_CONFIG: Omit<ServiceConfig, 'version'> = {
  coreMultiplier: 100,
  leaseMs: 120_000,
  recomputeIntervalMs: 15_000,
  reseedIntervalMs: 300_000,
  showsIntervalMs: 30_000,
  fenceTimeoutMs: 10_000,
  passConcurrency: 2,
  passTimeoutMs: 60_000,
  listenerProbeIntervalMs: 1_000,
  listenerProbeTimeoutMs: 2_000,
  resolveTimeoutMs: 2_000,
  historySampleMs: 5_000,
};

/** How long a key read's verdict (found / does not exist) answers without a new read. */
const VERDICT_MS = 1_000;

/** Limit changes remembered so a cap read can replay those that arrived during it. */
const LIMIT_LOG_SIZE = 10_000;
/**
 * Cap rows per step of a pass applying its cap read. Each step also replays every limit change
 * that arrived since the read began, so fewer rows per step would repeat that replay more often
 * (a flood of changes during a pass); 32 rows are ~0.1 ms, and `runInSlices` looks at the clock
 * every 8 steps.
 */
const CAP_ROWS_PER_STEP = 32;

type CapOptions = { onlyUnseeded?: boolean; authoritativeShows?: ReadonlySet<string> };

/** `rows` a step's worth ({@link CAP_ROWS_PER_STEP}) at a time. */
function* inPieces<T>(rows: readonly T[]): Generator<T[]> {
  for (let i = 0; i < rows.length; i += CAP_ROWS_PER_STEP) yield rows.slice(i, i + CAP_ROWS_PER_STEP);
}

/** Index of the first entry of the (seq-ordered) limit log newer than `seq`. */
function firstAfter(log: readonly { seq: number }[], seq: number): number {
  let low = 0;
  let high = log.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (log[mid]!.seq > seq) high = mid;
    else low = mid + 1;
  }
  return low;
}

export class AccountingService implements BookingService {
  readonly store = new Store();
  private readonly leases: LeaseBook;
  private readonly listener: Listener;
  private readonly managed = new Map<string, string>();
  private readonly deferred = new Map<string, string>();
  private readonly names = new VertexNames();
  private readonly loops: { recompute: SingleFlightLoop; reseed: SingleFlightLoop; shows: SingleFlightLoop };
  private readonly passes = {
    recompute: new PassRecord(),
    reseed: new PassRecord(),
    shows: new PassRecord(),
  };
  private readonly resolver: KeyResolver;
  /** Jobs moved by a booking's re-read, with the move's sequence number (an older cap read must not undo them). */
  private readonly movedAt = new Map<string, number>();
  private moveSeq = 0;
  private lastDrift: DriftReport | null = null;
  /**
   * Recompute passes and flip seeds each bump the epoch before their snapshot read and settle
   * buckets after it: one at a time, or one would clear a bucket the other still carries.
   */
  private readonly epochPass = pLimit(1);
  /**
   * Writes of a database read into the store go one at a time: a pass applies its read over
   * many turns of the event loop, and a job moved by a booking's key read in between would
   * have its snapshot part follow it twice.
   */
  private readonly bulkWrites = pLimit(1);
  private limitLog: { seq: number; change: LimitChange }[] = [];
  private limitSeq = 0;
  private seeded = false;
  private lock: LockView | undefined;
  private readonly startedAt = Date.now();
  private leaseTimer: NodeJS.Timeout | undefined;
  private historyTimer: NodeJS.Timeout | undefined;
  private historyRunning = false;
  /** The ids and names of farm-wide reads, one instance each across passes (row-strings.ts). */
  private readonly texts = new StringInterner();
  /** Per-vertex refusal rates and the ~10-minute history behind `inspect`'s detail pane. */
  readonly refusalHistory: RefusalHistory;
  private readonly logger: Logger;
  private readonly counters = { applied: 0, rejected: 0, not_managed: 0, lease_expired: 0 };
  /** Bookings in the same millisecond share one formatted expiry (formatting dominates a batch). */
  private lastExpiry = { ms: Number.NaN, text: '' };
  private lastDeadline = { ms: Number.NaN, text: '' };
  private readonly insertMarginMs: number;
  private readonly drains = new ShowDrains();

  constructor(
    private pool: Sql,
    connectListener: ListenerConnector,
    private readonly config: ServiceConfig,
    /** The parent logger: the service and its listener each take a child with their own `part`. */
    logger: Logger,
    private readonly metrics: Metrics,
    /**
     * Opens a replacement pool (the daemon's). postgres.js can leave a pooled connection
     * stuck after its backend was killed mid-connect (every query on it ends in
     * CONNECT_TIMEOUT, for as long as the process runs): a pass that fails on the
     * connection swaps the whole pool, so recovery never waits on a wedged connection.
     */
    private readonly renewPool?: () => Sql,
  ) {
    this.logger = logger.child({ part: 'service' });
    this.leases = new LeaseBook(config.leaseMs);
    this.resolver = new KeyResolver((keys) => this.readKeys(keys), VERDICT_MS);
    this.refusalHistory = new RefusalHistory(config.historySampleMs ?? 5_000);
    this.insertMarginMs = insertMarginMs(config.leaseMs);
    metrics.inflightSource = () => this.store.inflightCount;
    metrics.readySource = () => this.ready;
    metrics.lockHeldSource = () => this.lock?.held() ?? true;
    this.listener = new Listener(
      connectListener,
      this.listenerHandlers(),
      logger.child({ part: 'listener' }),
      { probeIntervalMs: config.listenerProbeIntervalMs, probeTimeoutMs: config.listenerProbeTimeoutMs },
    );
    this.loops = {
      recompute: new SingleFlightLoop(
        () => this.timed('recompute', () => this.recomputePass()),
        config.recomputeIntervalMs,
      ),
      reseed: new SingleFlightLoop(
        () => this.timed('reseed', () => this.reseedPass()),
        config.reseedIntervalMs,
      ),
      shows: new SingleFlightLoop(() => this.timed('shows', () => this.showsPass()), config.showsIntervalMs),
    };
  }

  // ---- lifecycle ------------------------------------------------------------------------

  /** Bootstrap (blocking), then the listener and the loops. Bookings are refused until then. */
  async start(): Promise<void> {
    await this.bootstrap();
    await this.listener.start();
    for (const loop of Object.values(this.loops)) loop.start();
    const sweepEvery = Math.max(50, Math.min(1_000, Math.floor(this.config.leaseMs / 4)));
    this.leaseTimer = setInterval(() => this.expireLeases(), sweepEvery);
    this.leaseTimer.unref();
    this.historyTimer = setInterval(() => void this.tickHistory(), this.refusalHistory.sampleMs);
    this.historyTimer.unref();
  }

  /** One history tick over every vertex, in one go (the bootstrap's first tick, tests). */
  sampleHistory(now = Date.now()): void {
    runToEnd(this.historySteps(now));
  }

  /**
   * The timer's history tick: the same walk in slices, so no booking waits behind it. While
   * one runs, the next is skipped (resolves at once).
   */
  async tickHistory(): Promise<void> {
    if (this.historyRunning) return;
    this.historyRunning = true;
    try {
      await this.inSlices(this.historySteps(Date.now()));
    } catch (err) {
      this.logger.warn({ err }, 'refusal history tick failed');
    } finally {
      this.historyRunning = false;
    }
  }

  private historySteps(now: number): Steps<void> {
    const store = this.store;
    // One walk per tick: the history takes the previous tick's time as every new baseline.
    return this.refusalHistory.sampleSteps(
      (function* () {
        for (const kind of VERTEX_KINDS) yield* store.vertices(kind);
      })(),
      now,
    );
  }

  async stop(): Promise<void> {
    this.seeded = false;
    this.updateReady();
    if (this.leaseTimer !== undefined) clearInterval(this.leaseTimer);
    if (this.historyTimer !== undefined) clearInterval(this.historyTimer);
    await Promise.all(Object.values(this.loops).map((loop) => loop.stop()));
    await this.listener.stop();
  }

  /** The daemon's N=1 lease; from then on no booking is accepted unless it says serving. */
  attachLock(lock: LockView): void {
    this.lock = lock;
    this.updateReady();
  }

  /** Seeded, following the feeds, and (under a daemon) serving a valid lease: checked per booking. */
  get ready(): boolean {
    return this.seeded && this.listener.connected && (this.lock?.serving() ?? true);
  }

  get listenerConnected(): boolean {
    return this.listener.connected;
  }

  // ---- bookings -------------------------------------------------------------------------

  /**
   * Outcomes are counted in Prometheus by the HTTP layer, per request, in one place.
   * Synchronous when the store knows every key and the job's path (the fast path); otherwise
   * the unknown keys are read first (`wait`), or, with `wait` false (a batch whose keys were
   * read by {@link prepare}), answered at once from what is known.
   */
  book(request: BookingRequest, wait = true): BookResult | Promise<BookResult> {
    const refused = this.gate(request);
    if (refused !== undefined) return refused;
    const known = this.store.bookIfKnown(request);
    if (known !== undefined) return this.answer(known);
    const checked = this.examine(request, !wait);
    if (checked !== undefined) return checked;
    return this.resolveBounded(this.keysToRead([request])).then(() => this.bookResolved(request));
  }

  /**
   * Whether bookings of this show may be checked at all (checked again after any await): the
   * daemon serves, the show is published as managed, and it is not draining for a flip.
   */
  private gate(request: BookingRequest): BookResult | undefined {
    if (!this.ready) return { error: 'not_ready' };
    if (!this.managed.has(request.show)) {
      this.counters.not_managed++;
      return { result: 'not_managed' };
    }
    const draining = this.drains.reasonFor(request.show);
    if (draining !== undefined) return { result: 'show_draining', show: request.show, reason: draining };
    return undefined;
  }

  /** Read the unknown keys of a batch's bookings in one go; undefined when all are known. */
  prepare(requests: readonly BookingRequest[]): Promise<void> | undefined {
    if (!this.ready) return undefined;
    const keys = this.keysToRead(requests);
    if (keys.jobs.length + keys.folders.length + keys.subscriptions.length === 0) return undefined;
    return this.resolveBounded(keys);
  }

  /** After the read: answer from what is known now, never waiting again. */
  private bookResolved(request: BookingRequest): BookResult {
    return this.gate(request) ?? this.examine(request, true) ?? this.bookKnown(request);
  }

  /**
   * The fast path: the store holds caps for all three keys, and the job's show and folder
   * are the ones the booking names. No allocation.
   */
  private pathKnown(request: BookingRequest): boolean {
    const job = this.store.job(request.job);
    if (job === undefined || !job.capsSeeded) return false;
    if (job.folderId !== request.folder || job.show !== request.show) return false;
    if (this.store.folder(request.folder)?.capsSeeded !== true) return false;
    return this.store.subscription(request.show, request.alloc)?.capsSeeded === true;
  }

  /**
   * Check a booking's keys and path against what the store and recent reads know. Returns a
   * refusal, or undefined when it can be booked (all known) or must be read first (`final`
   * false). With `final`, a key still unknown answers `resolving` (retryable).
   */
  private examine(request: BookingRequest, final: boolean): BookResult | undefined {
    const job = this.store.job(request.job);
    let unknown = false;
    if (job === undefined || !job.capsSeeded || job.folderId === undefined) {
      const found = this.resolver.verdict(jobKey(request.job));
      if (found === false) return { error: 'unknown_job', job: request.job };
      unknown = true;
    } else if (job.show !== request.show) {
      return { error: 'wrong_show', job: request.job, show: job.show ?? '' };
    } else if (job.folderId !== request.folder) {
      // Either the client is wrong or the job moved: a recent read of the job decides.
      if (this.resolver.verdict(jobKey(request.job)) === true) {
        return { error: 'wrong_folder', job: request.job, folder: job.folderId };
      }
      unknown = true;
    }
    if (this.store.folder(request.folder)?.capsSeeded !== true) {
      if (this.resolver.verdict(folderKey(request.folder)) === false) {
        return { error: 'unknown_folder', folder: request.folder };
      }
      unknown = true;
    }
    if (this.store.subscription(request.show, request.alloc)?.capsSeeded !== true) {
      if (this.resolver.verdict(subscriptionKey(request.show, request.alloc)) === false) {
        return { error: 'unknown_subscription', show: request.show, alloc: request.alloc };
      }
      unknown = true;
    }
    if (!unknown) return undefined;
    return final ? { error: 'resolving', retry_after_ms: this.retryAfterMs() } : undefined;
  }

  private retryAfterMs(): number {
    return Math.max(100, Math.min(1_000, Math.round(this.config.resolveTimeoutMs / 2)));
  }

  /** The keys of these bookings the store does not know, or must re-check (a job's folder). */
  private keysToRead(requests: readonly BookingRequest[]): UnknownKeys {
    const keys: UnknownKeys = { jobs: [], folders: [], subscriptions: [] };
    for (const request of requests) {
      if (!this.managed.has(request.show) || this.pathKnown(request)) continue;
      const job = this.store.job(request.job);
      if (job === undefined || !job.capsSeeded || job.folderId !== request.folder)
        keys.jobs.push(request.job);
      if (this.store.folder(request.folder)?.capsSeeded !== true) keys.folders.push(request.folder);
      if (this.store.subscription(request.show, request.alloc)?.capsSeeded !== true) {
        keys.subscriptions.push({ show: request.show, alloc: request.alloc });
      }
    }
    return keys;
  }

  /** Read the keys, waiting at most `resolveTimeoutMs` (the read goes on and lands later). */
  private resolveBounded(keys: UnknownKeys): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.config.resolveTimeoutMs);
    });
    return Promise.race([this.resolver.resolve(keys), bound]).finally(() => clearTimeout(timer));
  }

  /**
   * One read of the keys; caps of those found in a managed show go into the store (replaying
   * limit changes that raced the read), and a job found in another folder than the store holds
   * it under is moved there with its usage. Keys of shows that are not managed count as not
   * found: they never get a vertex.
   */
  private async readKeys(keys: UnknownKeys): Promise<ReadonlySet<string>> {
    const since = this.limitSeq;
    this.metrics.keyReads.inc();
    const read = await capRowsOfKeys(this.pool, keys);
    return this.bulkWrites(() => this.applyKeyRead(read, since));
  }

  private applyKeyRead(read: NamedCapRows, since: number): ReadonlySet<string> {
    const managed = (row: { show: string }) => this.managed.has(row.show);
    const rows: NamedCapRows = {
      subscriptions: read.subscriptions.filter(managed),
      folders: read.folders.filter(managed),
      jobs: read.jobs.filter(managed),
    };
    for (const row of rows.jobs) {
      const job = this.store.job(row.id);
      if (
        job?.folderId !== undefined &&
        job.folderId !== row.folder &&
        this.store.moveJob(row.id, row.folder)
      ) {
        this.movedAt.set(row.id, ++this.moveSeq);
        this.metrics.jobMoves.inc();
        this.logger.info(
          { job: row.id, from: job.folderId, to: row.folder },
          'job moved folder; usage moved',
        );
      }
    }
    this.applyCaps(rows, { onlyUnseeded: true }, since);
    const found = new Set<string>();
    for (const row of rows.jobs) found.add(jobKey(row.id));
    for (const row of rows.folders) found.add(folderKey(row.id));
    for (const row of rows.subscriptions) found.add(subscriptionKey(row.show, row.alloc));
    return found;
  }

  /** Moves the recompute's cap read saw, unless a booking's newer read moved the job since. */
  private *moveSteps(jobs: NamedCapRows['jobs'], movesSince: number): Steps<void> {
    for (const row of jobs) {
      const job = this.store.job(row.id);
      if (
        job?.folderId !== undefined &&
        job.folderId !== row.folder &&
        (this.movedAt.get(row.id) ?? 0) <= movesSince &&
        this.store.moveJob(row.id, row.folder)
      )
        this.metrics.jobMoves.inc();
      yield;
    }
    for (const [id, seq] of this.movedAt) if (seq <= movesSince) this.movedAt.delete(id);
  }

  /** The store's check-and-increment (one synchronous critical section), and the lease. */
  private bookKnown(request: BookingRequest): BookResult {
    return this.answer(this.store.book(request));
  }

  private answer(outcome: BookOutcome): BookResult {
    if (outcome.result === 'limit_exceeded') {
      this.counters.rejected++;
      return outcome;
    }
    const lease = this.leases.add(outcome, Date.now());
    this.drains.booked(showOf(outcome));
    this.counters.applied++;
    return {
      result: 'applied',
      booking: lease.id,
      lease_expires_at: this.expiryText(lease.expiresAt),
      insert_deadline: this.deadlineText(lease.expiresAt - this.insertMarginMs),
    };
  }

  private expiryText(ms: number): string {
    if (ms !== this.lastExpiry.ms) this.lastExpiry = { ms, text: new Date(ms).toISOString() };
    return this.lastExpiry.text;
  }

  private deadlineText(ms: number): string {
    if (ms !== this.lastDeadline.ms) this.lastDeadline = { ms, text: new Date(ms).toISOString() };
    return this.lastDeadline.text;
  }

  /** Settles whatever the show's state: a booking applied before a flip still ends. */
  confirm(booking: string): ConfirmResponse {
    const taken = this.leases.take(booking);
    if (taken === undefined) return this.late('confirm', 'unknown_booking');
    if ('expired' in taken) {
      // The client broke the contract: its proc may have been committed after a recompute
      // already dropped the expired booking. Count it again (an over-count at worst).
      this.store.recountLate(taken.lease.booking);
      return this.late('confirm', 'lease_expired');
    }
    this.store.confirm(taken.lease.booking);
    this.drains.settled(showOf(taken.lease.booking));
    this.metrics.settlements.inc({ how: 'confirmed' });
    return { result: 'confirmed' };
  }

  rollback(booking: string): RollbackResponse {
    const taken = this.leases.take(booking);
    if (taken === undefined) return this.late('rollback', 'unknown_booking');
    // Settled by expiry, it stays counted until a snapshot shows there is no proc: nothing to undo.
    if ('expired' in taken) return this.late('rollback', 'lease_expired');
    this.store.rollback(taken.lease.booking);
    this.drains.settled(showOf(taken.lease.booking));
    this.metrics.settlements.inc({ how: 'rolled_back' });
    return { result: 'rolled_back' };
  }

  /** A settlement that broke the client contract: counted for alerting, answered as an error. */
  private late<E extends 'unknown_booking' | 'lease_expired'>(
    op: 'confirm' | 'rollback',
    reason: E,
  ): { error: E } {
    this.metrics.lateSettlements.inc({ op, reason });
    this.logger.debug({ op, reason }, 'settlement outside the client contract');
    return { error: reason };
  }

  /** Expired in-flight bookings settle as a confirm would: SPEC §1 "Booking leases". */
  expireLeases(now = Date.now()): number {
    const expired = this.leases.sweep(now, (lease) => {
      this.store.confirm(lease.booking);
      this.drains.settled(showOf(lease.booking));
    });
    if (expired > 0) {
      this.counters.lease_expired += expired;
      this.metrics.leaseExpired.inc(expired);
      this.metrics.settlements.inc({ how: 'lease_expired' }, expired);
      this.logger.warn({ expired }, 'booking leases expired; settled as confirmed');
    }
    return expired;
  }

  // ---- flip to Cuebot ---------------------------------------------------------------------

  /** Phase one of `flip-show --to cuebot`: see {@link ShowDrains}. */
  async drainShow(show: string, timeoutMs: number): Promise<DrainShowResponse | DrainTimeout> {
    const outcome = await this.drains.drain(show, 'flipping to cuebot', timeoutMs);
    if (!outcome.drained) {
      this.logger.warn({ show, inflight: outcome.inflight }, 'show drain timed out; drain lifted');
      return { error: 'drain_timeout', show, inflight: outcome.inflight };
    }
    this.logger.info({ show, ms: Math.round(outcome.waitedMs) }, 'show drained: nothing in flight');
    return { result: 'drained', show, waited_ms: Math.round(outcome.waitedMs) };
  }

  undrainShow(show: string): UndrainShowResponse {
    const lifted = this.drains.lift(show);
    if (lifted) this.logger.info({ show }, 'show drain lifted');
    return { result: lifted ? 'lifted' : 'not_draining', show };
  }

  // ---- passes ---------------------------------------------------------------------------

  recompute(): Promise<void> {
    return this.loops.recompute.runNow();
  }

  reseed(): Promise<void> {
    return this.loops.reseed.runNow();
  }

  refreshShows(): Promise<void> {
    return this.loops.shows.runNow();
  }

  /** Caps first, then booked counters, for every managed show; blocking. */
  private async bootstrap(): Promise<void> {
    const started = performance.now();
    const shows = await managedShows(this.pool);
    const { caps } = await seedStore(this.pool, this.store, shows, this.config.coreMultiplier);
    this.names.remember(caps);
    for (const show of shows) this.publish(show);
    // The history's first tick, before any booking is accepted: refusals from the first
    // booking on are measured from here (the timer's first tick comes a period later).
    this.sampleHistory();
    this.seeded = true;
    this.updateReady();
    this.metrics.passDuration.observe({ pass: 'bootstrap' }, (performance.now() - started) / 1000);
    this.logger.info(
      { shows: shows.length, ms: Math.round(performance.now() - started), counts: this.counts() },
      'bootstrap complete',
    );
  }

  private async recomputePass(): Promise<void> {
    const started = performance.now();
    const drift = await this.epochPass(async () => {
      const shows = [...this.managed.keys()];
      const epoch = this.store.beginRecompute();
      const since = this.limitSeq;
      const movesSince = this.moveSeq;
      const read = await readAccounting(this.pool, shows, this.texts.intern);
      this.texts.endRead();
      // Every walk over the farm goes in slices: no booking waits behind a recompute.
      const snapshot = await this.inSlices(snapshotSteps(read.booked, read.caps, this.config.coreMultiplier));
      await this.fence();
      return this.bulkWrites(async () => {
        // The cap read lists every subscription of these shows: one missing was deleted.
        const options = { onlyUnseeded: true, authoritativeShows: new Set(shows) };
        await this.inSlices(this.capSteps(read.caps, options, since));
        await this.inSlices(this.moveSteps(read.caps.jobs, movesSince));
        return this.inSlices(this.store.beginOverwrite(snapshot, epoch));
      });
    });
    this.lastDrift = drift;
    for (const vertex of VERTEX_KINDS) {
      this.metrics.recomputeDrift.set({ vertex }, drift[vertex].cores);
      this.metrics.recomputeDriftGpus.set({ vertex }, drift[vertex].gpus);
    }
    await this.inSlices(this.overCapSteps());
    const rewritten = await rewriteAccountingTables(
      this.pool,
      { kind: 'managed' },
      this.config.passConcurrency,
    );
    const seconds = (performance.now() - started) / 1000;
    this.metrics.recomputeDuration.observe(seconds);
    this.metrics.lastRecompute.set(Date.now() / 1000);
    this.logger.debug({ ms: Math.round(seconds * 1000), drift, rewritten }, 'recompute pass');
  }

  private async reseedPass(): Promise<void> {
    const shows = [...this.managed.keys()];
    const since = this.limitSeq;
    const caps = await capRows(this.pool, shows, this.texts.intern);
    const options = { authoritativeShows: new Set(shows) };
    await this.bulkWrites(() => this.inSlices(this.capSteps(caps, options, since)));
    await this.inSlices(this.overCapSteps());
    this.metrics.lastReseed.set(Date.now() / 1000);
    this.logger.debug({ shows: shows.length }, 'limit reseed pass');
  }

  /** Removals apply at once; each newly managed show is seeded before it is published. */
  private async showsPass(): Promise<void> {
    const rows = await managedShows(this.pool);
    const wanted = new Set(rows.map((row) => row.id));
    for (const id of [...this.managed.keys()]) {
      if (!wanted.has(id)) {
        this.managed.delete(id);
        // Flipped: a drain held for the flip has done its job.
        this.drains.lift(id);
        this.logger.info({ show: id }, 'show no longer scheduler-managed; bookings answer not_managed');
      }
    }
    for (const id of [...this.deferred.keys()]) if (!wanted.has(id)) this.deferred.delete(id);
    const limit = pLimit(this.config.passConcurrency);
    const added = rows.filter((row) => !this.managed.has(row.id));
    await Promise.all(added.map((show) => limit(() => this.seedShow(show))));
    this.metrics.managedShows.set(this.managed.size);
    this.metrics.deferredShows.set(this.deferred.size);
    this.logger.debug({ managed: this.managed.size, added: added.length }, 'managed shows refresh');
  }

  /** The flip seed: caps and booked counters of one show, then publish. A failure defers only it. */
  private async seedShow(show: ShowRow): Promise<void> {
    try {
      await this.epochPass(async () => {
        const epoch = this.store.beginRecompute();
        const since = this.limitSeq;
        const read = await readAccounting(this.pool, [show.id]);
        const snapshot = buildSnapshot(read.booked, read.caps, this.config.coreMultiplier);
        await this.fence();
        this.applyCaps(read.caps, { authoritativeShows: new Set([show.id]) }, since);
        this.store.seedShowBooked(snapshot, epoch);
      });
      this.publish(show);
      this.deferred.delete(show.id);
      this.logger.info({ show: show.name, id: show.id }, 'show seeded and published as scheduler-managed');
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.deferred.set(show.id, message);
      this.metrics.passFailures.inc({ pass: 'show_seed' });
      this.logger.warn(
        { show: show.name, id: show.id, err: message },
        'show seed failed; deferred to the next refresh',
      );
    }
  }

  /** Wait until notifications committed before the snapshot read are applied. */
  private async fence(): Promise<void> {
    const fenced = await this.listener.fence(this.config.fenceTimeoutMs);
    if (!fenced)
      this.logger.debug('listener down: overwrite without a fence (the reconnect recompute heals)');
  }

  /**
   * Set caps read from the database, then replay the limit changes that arrived since the
   * read began: a change committed after the read must win over the value it read.
   */
  private applyCaps(rows: NamedCapRows, options: CapOptions, since: number): void {
    this.store.setCaps(buildCapSet(rows, this.config.coreMultiplier), options);
    for (let i = firstAfter(this.limitLog, since); i < this.limitLog.length; i++)
      this.store.applyLimitChange(this.limitLog[i]!.change);
    this.names.remember(rows);
  }

  /**
   * `applyCaps` a few rows per step. Each step replays the limit changes, so no booking ever
   * sees a cap the read had before a newer change. Subscriptions go last and whole: only the
   * whole list says which one was deleted.
   */
  private *capSteps(rows: NamedCapRows, options: CapOptions, since: number): Steps<void> {
    const rowsOnly = { onlyUnseeded: options.onlyUnseeded === true };
    for (const folders of inPieces(rows.folders)) {
      this.applyCaps({ subscriptions: [], folders, jobs: [] }, rowsOnly, since);
      yield;
    }
    for (const jobs of inPieces(rows.jobs)) {
      this.applyCaps({ subscriptions: [], folders: [], jobs }, rowsOnly, since);
      yield;
    }
    this.applyCaps({ subscriptions: rows.subscriptions, folders: [], jobs: [] }, options, since);
  }

  private publish(show: ShowRow): void {
    this.managed.set(show.id, show.name);
    this.names.rememberShow(show.id, show.name);
    this.metrics.managedShows.set(this.managed.size);
  }

  private listenerHandlers(): ListenerHandlers {
    return {
      release: (message) => {
        this.store.applyRelease(message);
        this.metrics.releasesApplied.inc();
        this.metrics.lastRelease.set(Date.now() / 1000);
      },
      limitChanges: (changes) => {
        for (const change of changes) {
          this.store.applyLimitChange(change);
          this.limitLog.push({ seq: ++this.limitSeq, change });
          this.metrics.limitChangesApplied.inc();
        }
        if (this.limitLog.length > LIMIT_LOG_SIZE * 2) this.limitLog = this.limitLog.slice(-LIMIT_LOG_SIZE);
      },
      managedChange: () => {
        this.refreshShows().catch(() => undefined);
      },
      dropped: (channel, reason, error, payload) => {
        this.metrics.notificationsDropped.inc({ channel, reason });
        this.logger.warn(
          { channel, reason, error, payload: payload.slice(0, 200) },
          'dropped malformed notification',
        );
      },
      connected: (reconnect) => {
        this.metrics.listenerConnected.set(1);
        if (reconnect) this.metrics.listenerReconnects.inc();
        // Whatever was missed while disconnected is healed now, not after a whole interval.
        if (this.seeded) {
          this.recompute().catch(() => undefined);
          this.reseed().catch(() => undefined);
        }
      },
      disconnected: () => {
        this.metrics.listenerConnected.set(0);
      },
    };
  }

  private async timed(pass: 'recompute' | 'reseed' | 'shows', run: () => Promise<void>): Promise<void> {
    const record = this.passes[pass];
    const started = performance.now();
    const pool = this.pool;
    try {
      // A stalled connection must fail the pass, not hang its loop: the next pass retries.
      // An abandoned pass that wakes up later is harmless: its overwrite checks the epoch.
      await withDeadline(run(), this.config.passTimeoutMs, `${pass} pass`);
      record.succeeded(Date.now(), performance.now() - started);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      record.failed(Date.now(), performance.now() - started, message);
      this.metrics.passFailures.inc({ pass });
      this.logger.warn({ pass, err: message }, 'pass failed; retrying next tick');
      if (pool === this.pool && this.renewPool !== undefined && isConnectionFailure(error)) {
        this.pool = this.renewPool();
        this.logger.warn({ pass }, 'query pool replaced after a connection failure');
        void pool.end({ timeout: 1 }).catch(() => undefined);
      }
      throw error;
    } finally {
      this.metrics.passDuration.observe({ pass }, (performance.now() - started) / 1000);
    }
  }

  private updateReady(): void {
    this.metrics.ready.set(this.ready ? 1 : 0);
    this.metrics.lockHeld.set((this.lock?.held() ?? true) ? 1 : 0);
  }

  private inSlices<T>(steps: Steps<T>): Promise<T> {
    return runInSlices(steps, this.config.sliceMs ?? SLICE_MS);
  }

  /** A missed cap decrease is the only way a counter can sit above its cap: make it visible. */
  private *overCapSteps(): Steps<void> {
    for (const kind of VERTEX_KINDS) {
      let over = 0;
      for (const vertex of this.store.vertices(kind)) {
        if (isOverCap(vertex)) over++;
        yield;
      }
      this.metrics.capsExceeded.set({ vertex: kind }, over);
    }
  }

  // ---- reads ----------------------------------------------------------------------------

  counts(): Record<VertexKind, number> {
    return {
      subscription: this.store.count('subscription'),
      folder: this.store.count('folder'),
      job: this.store.count('job'),
    };
  }

  state(query: StateQuery): Promise<StateResponse> {
    return stateResponse(this.store, this.managed, this.names, query, {
      history: this.refusalHistory,
      now: Date.now(),
    });
  }

  /** Per-subscription usage and per-show refusals of the published shows, labelled by name. */
  poolSnapshot(): PoolSnapshot {
    const snapshot: PoolSnapshot = { subscriptions: [], showRefusals: [] };
    const byShow = new Map<string, Map<LimitTable, number>>();
    for (const kind of VERTEX_KINDS) {
      for (const vertex of this.store.vertices(kind)) {
        if (vertex.show === undefined || !this.managed.has(vertex.show)) continue;
        const show = this.managed.get(vertex.show) || vertex.show;
        if (kind === 'subscription') {
          snapshot.subscriptions.push({
            show,
            alloc: this.names.of(vertex) ?? vertex.id,
            cores: vertex.cores,
            burst: vertex.maxCores,
            refusals: vertex.refusedCores,
          });
        }
        if (vertex.refusedCores + vertex.refusedGpus === 0) continue;
        let tables = byShow.get(show);
        if (tables === undefined) byShow.set(show, (tables = new Map()));
        for (const [table, count] of Object.entries(refusalsByTable(vertex)) as [LimitTable, number][]) {
          if (count > 0) tables.set(table, (tables.get(table) ?? 0) + count);
        }
      }
    }
    for (const [show, tables] of byShow)
      for (const [table, refusals] of tables) snapshot.showRefusals.push({ show, table, refusals });
    return snapshot;
  }

  vertexDetail(kind: VertexKind, key: string): Promise<VertexDetailResponse | undefined> {
    return vertexDetail(
      {
        store: this.store,
        managed: this.managed,
        names: this.names,
        refusals: { history: this.refusalHistory, now: Date.now() },
        folderOf: (job) => jobFolder(this.pool, job),
      },
      kind,
      key,
    );
  }

  status(): StatusResponse {
    const counts = this.listener.counts;
    return {
      version: this.config.version,
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      ready: this.ready,
      lock_held: this.lock?.held() ?? true,
      ...(this.lock === undefined ? {} : { lock: this.lock.status() }),
      listener: {
        connected: this.listener.connected,
        reconnects: counts.reconnects,
        applied: {
          release: counts.release,
          limit_change: counts.limit_change,
          managed_change: counts.managed_change,
          probe: counts.probe,
        },
        dropped: counts.dropped,
        last_notification_at: isoOrNull(this.listener.lastNotificationAt),
      },
      last_recompute: { ...this.passes.recompute.toJSON(), drift: this.lastDrift },
      last_reseed: this.passes.reseed.toJSON(),
      last_shows_refresh: this.passes.shows.toJSON(),
      epoch: this.store.epoch,
      inflight: this.store.inflightCount,
      managed_shows: [...this.managed].map(([id, name]) => ({ id, name })),
      deferred_shows: [...this.deferred].map(([id, error]) => ({ id, error })),
      draining_shows: this.drains.list(),
      bookings: { ...this.counters },
      counts: this.counts(),
    };
  }
}

function isConnectionFailure(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return (
    error instanceof DeadlineError ||
    isUnreachableError(error) ||
    (typeof code === 'string' && (code.startsWith('57P') || code.startsWith('08')))
  );
}

/** A booking's show: its subscription vertex always has one. */
function showOf(booking: { subscription: { show: string | undefined } }): string {
  return booking.subscription.show ?? '';
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
