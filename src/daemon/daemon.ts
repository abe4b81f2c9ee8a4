/**
 * `cueacct serve`: the N=1 lock, the accounting service and the HTTP API, started and
 * stopped in a safe order.
 *
 * Start: take the advisory lock (or exit naming the holder; or, as a standby, wait) →
 * open the HTTP API (health probes answer, bookings 503) → bootstrap, listener, loops →
 * ready. The HTTP API opens before the bootstrap so `/readyz` and the fail-closed 503 are
 * observable during a standby wait or a long seed.
 *
 * The lock is one state machine (docs/architecture.md "The lock is a lease"):
 *   standby/acquiring → syncing → serving → fenced → acquiring → … → stopped
 * Every acquisition bumps a generation and so does every loss; each step re-checks it after
 * each await, so a loss during any step wins over that step's result. Syncing lasts at least
 * the lock-delay (one TTL, overlapped with the re-sync) so a previous holder that lost
 * contact has fenced itself before this one serves. Bookings are accepted only while the
 * state is serving and the lease is valid (checked per booking).
 */
import type { Logger } from 'pino';
import type { Sql } from 'postgres';
import type { LockState, LockStatus } from '../api/types.js';
import { listenerConnector, openPool, type ConnectionTarget } from '../db/connection.js';
import { isConfigurationError } from '../db/errors.js';
import { createHttpServer, type HttpServer, type ListenTarget } from '../http/server.js';
import { Metrics } from '../observability/metrics.js';
import { registerPoolMetrics } from '../observability/pool-metrics.js';
import { AccountingService, type ServiceConfig } from '../service/service.js';
import { cancellableDelay } from '../service/deadline.js';
import { AdvisoryLock, lockTimings, type LockHolder } from './lock.js';

export interface DaemonConfig {
  target: ConnectionTarget;
  /** Redacted description of the database, for messages. */
  databaseDescription: string;
  listen: ListenTarget;
  token?: string;
  service: ServiceConfig;
  poolSize: number;
  standby: boolean;
  logger: Logger;
  /** Per-subscription series on /metrics (booked, burst, refusals per show × alloc); default true. */
  perSubscriptionMetrics?: boolean;
  /** How long shutdown lets in-flight HTTP requests finish. */
  shutdownDeadlineMs?: number;
  /** The lock lease (`--lock-ttl`); default 5 s. */
  lockTtlMs?: number;
}

export const DEFAULT_LOCK_TTL_MS = 5_000;

/**
 * Allowance for clock-rate drift between two daemons' monotonic clocks (ρ ≤ 0.5 %): the
 * lock-delay is TTL·(1+ρ)/(1−ρ) so it outlasts the old holder's lease in real time.
 */
export const CLOCK_DRIFT = 0.005;

/**
 * Seconds postgres.js waits for a connection (PGCONNECT_TIMEOUT wins): a stalled connect is
 * abandoned quickly so recovery after an outage is bounded (postgres.js's default is 30 s).
 */
const DAEMON_CONNECT_TIMEOUT_S = 2;

/** The lock is held by another daemon and this one is not a standby. */
export class LockHeldError extends Error {
  constructor(readonly holder: LockHolder | undefined) {
    super(
      holder === undefined
        ? 'another cueacct daemon holds the advisory lock on this database'
        : `another cueacct daemon holds the advisory lock on this database (pid ${holder.pid}, application "${holder.applicationName}", client ${holder.clientAddress ?? 'local socket'}, since ${holder.backendStart ?? 'unknown'}); start with --standby to wait for it`,
    );
  }
}

/** The HTTP API could not listen (address in use, bad socket path): a configuration problem. */
export class ListenError extends Error {}

/** Bounded backoff: once PostgreSQL answers again, nothing waits longer than this to retry. */
const MAX_RETRY_MS = 1_000;

export class Daemon {
  readonly metrics = new Metrics();
  private readonly lock: AdvisoryLock;
  private readonly target: ConnectionTarget;
  private readonly lockDelayMs: number;
  private readonly retryMs: number;
  private pool: Sql | undefined;
  private service: AccountingService | undefined;
  private http: HttpServer | undefined;
  private address = '';
  private lockState: LockState = 'acquiring';
  /** Bumped on every acquisition, loss and stop: a step whose generation is gone lost the race. */
  private generation = 0;
  private generationEnded = deferred();
  private handovers = 0;
  private readonly timers = new Set<{ cancel(): void }>();
  private bootstrapping: Promise<void> | undefined;
  private bootstrapped = false;
  private firstServing = deferred();
  private lockLoop: Promise<void> | undefined;

  constructor(private readonly config: DaemonConfig) {
    this.target = {
      ...config.target,
      options: { connect_timeout: DAEMON_CONNECT_TIMEOUT_S, ...config.target.options },
    };
    const timings = lockTimings(config.lockTtlMs ?? DEFAULT_LOCK_TTL_MS);
    this.lockDelayMs = (timings.ttlMs * (1 + CLOCK_DRIFT)) / (1 - CLOCK_DRIFT);
    this.retryMs = Math.min(MAX_RETRY_MS, timings.ttlMs / 2);
    this.lock = new AdvisoryLock(
      this.target,
      config.logger.child({ part: 'lock' }),
      (reason) => this.onLockLost(reason),
      timings,
    );
    this.metrics.lockSource = () => {
      const age = this.lock.leaseAgeMs();
      return { state: this.lockState, proofAgeSeconds: age === null ? null : age / 1000 };
    };
  }

  get url(): string {
    return this.address;
  }

  get state(): LockState {
    return this.lockState;
  }

  /** Whether bookings may be accepted now: serving, and the lease still valid by the clock. */
  get serving(): boolean {
    return this.lockState === 'serving' && this.lock.leaseValid();
  }

  lockStatus(): LockStatus {
    const age = this.lock.leaseAgeMs();
    return {
      state: this.lockState,
      lease_age_ms: age === null ? null : Math.round(age),
      ttl_ms: this.lock.timings.ttlMs,
      handovers: this.handovers,
      backend_pid: this.lock.pid ?? null,
    };
  }

  /** Resolves once the daemon serves (or stops); throws LockHeldError, a connection or a configuration error. */
  async start(): Promise<void> {
    const { logger } = this.config;
    const acquired = await this.lock.tryAcquire();
    if (!acquired && !this.config.standby) throw new LockHeldError(await this.lock.holder());

    this.pool = openPool(this.target, this.config.poolSize);
    this.service = new AccountingService(
      this.pool,
      listenerConnector(this.target),
      this.config.service,
      logger,
      this.metrics,
      () => (this.pool = openPool(this.target, this.config.poolSize)),
    );
    this.service.attachLock({
      serving: () => this.serving,
      held: () => this.lock.held,
      status: () => this.lockStatus(),
    });
    const service = this.service;
    registerPoolMetrics(this.metrics.registry, () => service.poolSnapshot(), {
      perSubscription: this.config.perSubscriptionMetrics !== false,
    });
    this.http = createHttpServer({
      service: this.service,
      metrics: this.metrics,
      logger: logger.child({ part: 'http' }),
      version: this.config.service.version,
      ...(this.config.token === undefined ? {} : { token: this.config.token }),
    });
    this.address = await this.http.listen(this.config.listen).catch((error: unknown) => {
      const where =
        'socket' in this.config.listen
          ? this.config.listen.socket
          : `${this.config.listen.host}:${this.config.listen.port}`;
      throw new ListenError(
        `cannot listen on ${where}: ${error instanceof Error ? error.message : String(error)}`,
      );
    });
    logger.info({ address: this.address, database: this.config.databaseDescription }, 'listening');
    if (!acquired) {
      const holder = await this.lock.holder().catch(() => undefined);
      logger.info({ holder }, 'standby: waiting for the advisory lock');
    }
    this.lockLoop = this.runLock(acquired);
    await this.firstServing.promise;
  }

  /** Stop accepting, finish in-flight requests, stop the loops, release the lock. */
  async stop(): Promise<void> {
    if (this.lockState === 'stopped') return;
    const held = this.lock.held;
    // A transition like any other: nothing acquires afterwards, every pending wait ends.
    this.transition('stopped');
    for (const timer of this.timers) timer.cancel();
    this.firstServing.resolve();
    this.config.logger.info('shutting down');
    await this.http?.close(this.config.shutdownDeadlineMs ?? 10_000);
    await this.service?.stop();
    await this.lock.release();
    await this.lockLoop;
    await this.pool?.end({ timeout: 2 });
    this.config.logger.info(held ? 'stopped; lock released' : 'stopped');
  }

  private get stopped(): boolean {
    return this.lockState === 'stopped';
  }

  /** Enter `state` and end the current generation (a loss, an acquisition, a stop). */
  private transition(state: LockState): void {
    if (this.stopped) return;
    this.generation++;
    this.generationEnded.resolve();
    this.generationEnded = deferred();
    this.lockState = state;
  }

  /** standby/acquiring → syncing → serving → fenced → … until stopped. */
  private async runLock(acquiredAtStart: boolean): Promise<void> {
    let acquired = acquiredAtStart;
    let waited = !acquiredAtStart;
    while (!this.stopped) {
      if (!acquired) {
        if (this.lockState !== 'standby') this.setState('acquiring');
        try {
          acquired = await this.lock.tryAcquire();
          if (!acquired && !this.stopped) this.setState('standby');
        } catch (error) {
          this.config.logger.warn({ err: String(error) }, 'lock attempt failed; retrying');
        }
        if (this.stopped) return;
        if (!acquired || !this.lock.held) {
          acquired = false;
          await this.pause(this.retryMs);
          continue;
        }
      }
      acquired = false;
      this.transition('syncing');
      const generation = this.generation;
      if (waited) {
        this.handovers++;
        this.metrics.lockHandovers.inc();
      }
      waited = true;
      this.config.logger.info(
        { backendPid: this.lock.pid, lockDelayMs: Math.round(this.lockDelayMs), handovers: this.handovers },
        'advisory lock acquired: syncing, serving after the lock-delay',
      );
      if (!(await this.sync(generation))) {
        await this.pause(this.retryMs);
        continue;
      }
      this.setState('serving');
      this.config.logger.info(
        { status: this.service!.status().counts, backendPid: this.lock.pid },
        'ready: accepting bookings',
      );
      this.firstServing.resolve();
      await this.generationEnded.promise;
      if (this.stopped) return;
      await this.pause(this.retryMs);
    }
  }

  /** The lock-delay and the re-sync, overlapped; false when the generation ended first. */
  private async sync(generation: number): Promise<boolean> {
    const current = () => generation === this.generation && !this.stopped;
    const lockDelay = this.pause(this.lock.acquiredAt + this.lockDelayMs - performance.now());
    const resync = (async (): Promise<boolean> => {
      for (let attempt = 1; current(); attempt++) {
        try {
          if (this.bootstrapped) {
            // Another daemon may have booked while this one did not hold the lock: re-read first.
            await this.service!.refreshShows();
            await Promise.all([this.service!.recompute(), this.service!.reseed()]);
          } else {
            await this.bootstrap();
          }
          return true;
        } catch (error) {
          // A database without the Cuebot schema or without rights will not heal by itself.
          if (isConfigurationError(error) && !this.bootstrapped) {
            this.firstServing.reject(error);
            return false;
          }
          this.config.logger.warn({ err: String(error), attempt }, 'sync failed; retrying');
          await this.pause(Math.min(this.retryMs * attempt, MAX_RETRY_MS));
        }
      }
      return false;
    })();
    const ended = this.generationEnded.promise.then(() => false);
    const done = Promise.all([lockDelay, resync]).then(([, synced]) => synced);
    return (await Promise.race([done, ended])) && current() && this.lock.held;
  }

  /** One bootstrap at a time: a loss during it does not start a second one beside it. */
  private bootstrap(): Promise<void> {
    this.bootstrapping ??= this.service!.start().then(
      () => {
        this.bootstrapped = true;
      },
      (error: unknown) => {
        this.bootstrapping = undefined;
        throw error;
      },
    );
    return this.bootstrapping;
  }

  /** Fail closed at once (the state leaves serving); the lock loop takes it back and re-syncs. */
  private onLockLost(reason: string): void {
    this.transition('fenced');
    this.config.logger.warn({ reason }, 'lock state: fenced');
  }

  private setState(state: LockState): void {
    if (!this.stopped) this.lockState = state;
  }

  /** A wait that stop() cancels. */
  private async pause(ms: number): Promise<void> {
    if (ms <= 0 || this.stopped) return;
    const timer = cancellableDelay(ms);
    this.timers.add(timer);
    await timer.done;
    this.timers.delete(timer);
  }
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
  reject(error: unknown): void;
}

function deferred(): Deferred {
  let resolve: () => void = () => undefined;
  let reject: (error: unknown) => void = () => undefined;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}
