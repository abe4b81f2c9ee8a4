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
  RollbackResponse,
  StateResponse,
  StatusResponse,
  UndrainShowResponse,
} from '../api/types.js';
import { buildCapSet, buildSnapshot } from '../core/boundary.js';
import { Store } from '../core/store.js';
import {
  VERTEX_KINDS,
  type BookingRequest,
  type DriftReport,
  type LimitChange,
  type VertexKind,
} from '../core/types.js';
import { isOverCap } from '../core/vertex.js';
import { capRows, managedShows, readAccounting, type NamedCapRows, type ShowRow } from '../db/queries.js';
import { rewriteAccountingTables } from '../db/rewrite.js';
import type { Metrics } from '../observability/metrics.js';
import { ShowDrains } from './drain.js';
import { LeaseBook, insertMarginMs } from './leases.js';
import { Listener, type ListenerConnector, type ListenerHandlers } from './listener.js';
import { PassRecord } from './pass-record.js';
import { seedStore } from './seed.js';
import { SingleFlightLoop } from './single-flight-loop.js';
import { VertexNames, stateResponse } from './state-view.js';
import type { BookResult, BookingService, DrainTimeout, StateQuery } from './types.js';

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
}

export const DEFAULT_SERVICE_CONFIG: Omit<ServiceConfig, 'version'> = {
  coreMultiplier: 100,
  leaseMs: 120_000,
  recomputeIntervalMs: 15_000,
  reseedIntervalMs: 300_000,
  showsIntervalMs: 30_000,
  fenceTimeoutMs: 10_000,
  passConcurrency: 2,
};

/** Limit changes remembered so a cap read can replay those that arrived during it. */
const LIMIT_LOG_SIZE = 10_000;

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
  private lastDrift: DriftReport | null = null;
  /**
   * Recompute passes and flip seeds each bump the epoch before their snapshot read and settle
   * buckets after it: one at a time, or one would clear a bucket the other still carries.
   */
  private readonly epochPass = pLimit(1);
  private limitLog: { seq: number; change: LimitChange }[] = [];
  private limitSeq = 0;
  private seeded = false;
  private lockHeld = true;
  private readonly startedAt = Date.now();
  private leaseTimer: NodeJS.Timeout | undefined;
  private readonly counters = { applied: 0, rejected: 0, not_managed: 0, lease_expired: 0 };
  /** Bookings in the same millisecond share one formatted expiry (formatting dominates a batch). */
  private lastExpiry = { ms: Number.NaN, text: '' };
  private lastDeadline = { ms: Number.NaN, text: '' };
  private readonly insertMarginMs: number;
  private readonly drains = new ShowDrains();

  constructor(
    private readonly pool: Sql,
    connectListener: ListenerConnector,
    private readonly config: ServiceConfig,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    this.leases = new LeaseBook(config.leaseMs);
    this.insertMarginMs = insertMarginMs(config.leaseMs);
    metrics.inflightSource = () => this.store.inflightCount;
    this.listener = new Listener(
      connectListener,
      this.listenerHandlers(),
      logger.child({ part: 'listener' }),
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
  }

  async stop(): Promise<void> {
    this.seeded = false;
    this.updateReady();
    if (this.leaseTimer !== undefined) clearInterval(this.leaseTimer);
    await Promise.all(Object.values(this.loops).map((loop) => loop.stop()));
    await this.listener.stop();
  }

  /** The daemon reports the N=1 lock; without it no booking is accepted. */
  setLockHeld(held: boolean): void {
    this.lockHeld = held;
    this.updateReady();
  }

  get ready(): boolean {
    return this.seeded && this.lockHeld;
  }

  get listenerConnected(): boolean {
    return this.listener.connected;
  }

  // ---- bookings -------------------------------------------------------------------------

  /** Outcomes are counted in Prometheus by the HTTP layer, per request, in one place. */
  book(request: BookingRequest): BookResult {
    if (!this.ready) {
      return { error: 'not_ready' };
    }
    if (!this.managed.has(request.show)) {
      this.counters.not_managed++;
      return { result: 'not_managed' };
    }
    const draining = this.drains.reasonFor(request.show);
    if (draining !== undefined) return { result: 'show_draining', show: request.show, reason: draining };
    const outcome = this.store.book(request);
    if (outcome.result === 'limit_exceeded') {
      this.counters.rejected++;
      return outcome;
    }
    const lease = this.leases.add(outcome, Date.now());
    this.drains.booked(request.show);
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
      const read = await readAccounting(this.pool, shows);
      // Built before the fence so only the caps and the overwrite block the event loop after it.
      const snapshot = buildSnapshot(read.booked, read.caps, this.config.coreMultiplier);
      await this.fence();
      this.applyCaps(read.caps, { onlyUnseeded: true }, since);
      return this.store.overwriteCounters(snapshot, epoch);
    });
    this.lastDrift = drift;
    for (const vertex of VERTEX_KINDS) {
      this.metrics.recomputeDrift.set({ vertex }, drift[vertex].cores);
      this.metrics.recomputeDriftGpus.set({ vertex }, drift[vertex].gpus);
    }
    this.measureOverCap();
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
    const caps = await capRows(this.pool, shows);
    this.applyCaps(caps, { authoritativeShows: new Set(shows) }, since);
    this.measureOverCap();
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
  private applyCaps(
    rows: NamedCapRows,
    options: { onlyUnseeded?: boolean; authoritativeShows?: ReadonlySet<string> },
    since: number,
  ): void {
    this.store.setCaps(buildCapSet(rows, this.config.coreMultiplier), options);
    for (const entry of this.limitLog) if (entry.seq > since) this.store.applyLimitChange(entry.change);
    this.names.remember(rows);
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
    try {
      await run();
      record.succeeded(Date.now(), performance.now() - started);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      record.failed(Date.now(), performance.now() - started, message);
      this.metrics.passFailures.inc({ pass });
      this.logger.warn({ pass, err: message }, 'pass failed; retrying next tick');
      throw error;
    } finally {
      this.metrics.passDuration.observe({ pass }, (performance.now() - started) / 1000);
    }
  }

  private updateReady(): void {
    this.metrics.ready.set(this.ready ? 1 : 0);
    this.metrics.lockHeld.set(this.lockHeld ? 1 : 0);
  }

  /** A missed cap decrease is the only way a counter can sit above its cap: make it visible. */
  private measureOverCap(): void {
    for (const kind of VERTEX_KINDS) {
      let over = 0;
      for (const vertex of this.store.vertices(kind)) if (isOverCap(vertex)) over++;
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

  state(query: StateQuery): StateResponse {
    return stateResponse(this.store, this.managed, this.names, query);
  }

  status(): StatusResponse {
    const counts = this.listener.counts;
    return {
      version: this.config.version,
      uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
      ready: this.ready,
      lock_held: this.lockHeld,
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

/** A booking's show: its subscription vertex always has one. */
function showOf(booking: { subscription: { show: string | undefined } }): string {
  return booking.subscription.show ?? '';
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
