/**
 * `cueacct serve`: the N=1 lock, the accounting service and the HTTP API, started and
 * stopped in a safe order.
 *
 * Start: take the advisory lock (or exit naming the holder; or, as a standby, wait) →
 * open the HTTP API (health probes answer, bookings 503) → bootstrap, listener, loops →
 * ready. The HTTP API opens before the bootstrap so `/readyz` and the fail-closed 503 are
 * observable during a standby wait or a long seed; bookings are only ever accepted with
 * the lock held and the store seeded.
 */
import type { Logger } from 'pino';
import type { Sql } from 'postgres';
import { listenerConnector, openPool, type ConnectionTarget } from '../db/connection.js';
import { isConfigurationError } from '../db/errors.js';
import { createHttpServer, type HttpServer, type ListenTarget } from '../http/server.js';
import { Metrics } from '../observability/metrics.js';
import { registerPoolMetrics } from '../observability/pool-metrics.js';
import { AccountingService, type ServiceConfig } from '../service/service.js';
import { AdvisoryLock, type LockHolder } from './lock.js';

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
}

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

const RETRY_MS = 1_000;

export class Daemon {
  readonly metrics = new Metrics();
  private readonly lock: AdvisoryLock;
  private pool: Sql | undefined;
  private service: AccountingService | undefined;
  private http: HttpServer | undefined;
  private stopping = false;
  private address = '';
  private reacquiring: Promise<void> | undefined;

  constructor(private readonly config: DaemonConfig) {
    this.lock = new AdvisoryLock(config.target, config.logger.child({ part: 'lock' }), () =>
      this.onLockLost(),
    );
  }

  get url(): string {
    return this.address;
  }

  /** Resolves once the daemon is ready; throws LockHeldError or a connection error. */
  async start(): Promise<void> {
    const { logger } = this.config;
    const acquired = await this.lock.tryAcquire();
    if (!acquired && !this.config.standby) throw new LockHeldError(await this.lock.holder());

    this.pool = openPool(this.config.target, this.config.poolSize);
    this.service = new AccountingService(
      this.pool,
      listenerConnector(this.config.target),
      this.config.service,
      logger,
      this.metrics,
    );
    const service = this.service;
    registerPoolMetrics(this.metrics.registry, () => service.poolSnapshot(), {
      perSubscription: this.config.perSubscriptionMetrics !== false,
    });
    this.service.setLockHeld(acquired);
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

    if (!acquired) await this.waitForLock();
    if (this.stopping) return;
    this.service.setLockHeld(true);
    await this.bootstrapWithRetry();
    if (this.stopping) return;
    logger.info({ status: this.service.status().counts }, 'ready: accepting bookings');
  }

  /** Stop accepting, finish in-flight requests, stop the loops, release the lock. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const held = this.lock.held;
    this.config.logger.info('shutting down');
    await this.http?.close(this.config.shutdownDeadlineMs ?? 10_000);
    await this.service?.stop();
    await this.lock.release();
    await this.pool?.end({ timeout: 2 });
    this.config.logger.info(held ? 'stopped; lock released' : 'stopped');
  }

  private async waitForLock(): Promise<void> {
    const holder = await this.lock.holder().catch(() => undefined);
    this.config.logger.info({ holder }, 'standby: waiting for the advisory lock');
    while (!this.stopping) {
      try {
        if (await this.lock.tryAcquire()) {
          this.config.logger.info('standby: lock acquired, taking over');
          return;
        }
      } catch (error) {
        this.config.logger.warn({ err: String(error) }, 'standby: lock attempt failed');
      }
      await delay(RETRY_MS);
    }
  }

  private async bootstrapWithRetry(): Promise<void> {
    for (let attempt = 1; !this.stopping; attempt++) {
      try {
        await this.service!.start();
        return;
      } catch (error) {
        // A database without the Cuebot schema or without rights will not heal by itself.
        if (isConfigurationError(error)) throw error;
        this.config.logger.warn({ err: String(error), attempt }, 'bootstrap failed; retrying');
        await delay(Math.min(RETRY_MS * attempt, 10_000));
      }
    }
  }

  /** Fail closed at once, then take the lock back and re-sync before accepting again. */
  private onLockLost(): void {
    this.service?.setLockHeld(false);
    if (this.stopping || this.reacquiring !== undefined) return;
    this.reacquiring = (async () => {
      while (!this.stopping) {
        await delay(RETRY_MS);
        try {
          if (!(await this.lock.tryAcquire())) continue;
          // Another daemon may have booked while we did not hold the lock: re-read before serving.
          await this.service!.refreshShows();
          await Promise.all([this.service!.recompute(), this.service!.reseed()]);
          this.service!.setLockHeld(true);
          this.config.logger.info('advisory lock re-acquired: accepting bookings again');
          return;
        } catch (error) {
          this.service?.setLockHeld(false);
          this.config.logger.warn({ err: String(error) }, 'lock re-acquire failed; retrying');
        }
      }
    })().finally(() => {
      this.reacquiring = undefined;
    });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
