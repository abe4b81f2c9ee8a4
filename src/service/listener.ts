/**
 * The LISTEN connection: one dedicated PostgreSQL session, separate from the query pool,
 * reconnecting with capped exponential backoff. Payloads are parsed by the wire contract;
 * bad ones are dropped and counted, never half-applied, never fatal.
 *
 * It also carries the recompute fence: a NOTIFY on FENCE_CHANNEL sent after a snapshot
 * read arrives after every notification committed before it (PostgreSQL delivers in
 * commit order), so once it arrives every release the snapshot already reflects has been
 * applied, and the overwrite cannot be followed by a release it already counted.
 *
 * Liveness: a socket that stalls (packets stop, socket stays open) never closes by itself,
 * and postgres.js would otherwise reconnect a closed one behind our back. So the listener
 * probes itself with the same self-NOTIFY round trip under a deadline; a late probe or fence,
 * or a close, declares it disconnected, and the next attempt uses a fresh session.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Sql } from 'postgres';
import { withDeadline } from './deadline.js';
import {
  LIMIT_CHANGE_CHANNEL,
  MANAGED_CHANGE_CHANNEL,
  RELEASE_CHANNEL,
  parseLimitChange,
  parseManagedChange,
  parseRelease,
  type DropReason,
  type LimitChange,
  type ManagedChange,
  type ParseResult,
  type ReleaseMessage,
} from '../core/wire.js';
import { FENCE_CHANNEL, PROBE_CHANNEL } from '../db/notify.js';

export const LISTEN_CHANNELS = [
  RELEASE_CHANNEL,
  LIMIT_CHANGE_CHANNEL,
  MANAGED_CHANGE_CHANNEL,
  FENCE_CHANNEL,
  PROBE_CHANNEL,
];

export interface ListenerHandlers {
  release(message: ReleaseMessage): void;
  limitChanges(changes: LimitChange[]): void;
  managedChange(message: ManagedChange): void;
  dropped(channel: string, reason: DropReason, error: string, payload: string): void;
  /** LISTEN is (re-)established: the first time and after every reconnect. */
  connected(reconnect: boolean): void;
  disconnected(error: string): void;
}

/** Opens the dedicated session; `onnotify`/`onclose` must be wired into its options. */
export type ListenerConnector = (hooks: {
  onnotify: (channel: string, payload: string) => void;
  onclose: () => void;
}) => Sql;

export interface ListenerOptions {
  initialBackoffMs?: number;
  /** Reconnect backoff cap; short so recovery after an outage is bounded (default 1 s). */
  maxBackoffMs?: number;
  /** Time between liveness probes (default 1 s). */
  probeIntervalMs?: number;
  /** A probe not delivered within this declares the listener disconnected (default 2 s). */
  probeTimeoutMs?: number;
  /** Deadline of one connect + LISTEN attempt (default 3 s). */
  connectTimeoutMs?: number;
}

interface PendingFence {
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class Listener {
  private sql: Sql;
  /** Bumped whenever the session is replaced: late callbacks of an old one are ignored. */
  private sessionSeq = 0;
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private isConnected = false;
  private everConnected = false;
  private stopping = false;
  private reconnecting = false;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly fences = new Map<string, PendingFence>();
  private readonly fenceTag = randomBytes(4).toString('hex');
  private fenceSequence = 0;
  readonly counts = { release: 0, limit_change: 0, managed_change: 0, probe: 0, dropped: 0, reconnects: 0 };
  lastNotificationAt: number | null = null;

  constructor(
    private readonly connect: ListenerConnector,
    private readonly handlers: ListenerHandlers,
    private readonly logger: Logger,
    private readonly options: ListenerOptions = {},
  ) {
    this.sql = this.openSession();
  }

  private openSession(): Sql {
    const seq = ++this.sessionSeq;
    return this.connect({
      onnotify: (channel, payload) => {
        if (seq === this.sessionSeq) this.onNotify(channel, payload);
      },
      onclose: () => {
        if (seq === this.sessionSeq) this.onClose('connection lost');
      },
    });
  }

  get connected(): boolean {
    return this.isConnected;
  }

  /**
   * Connect; if the database does not answer, keep retrying in the background. Bookings
   * do not wait for the listener: without it counters only read high until a recompute.
   */
  async start(): Promise<void> {
    try {
      await this.listen();
    } catch (error) {
      this.logger.warn({ err: String(error) }, 'listener could not connect; retrying');
      this.replaceSession();
      this.scheduleReconnect(this.options.initialBackoffMs ?? 100);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.reconnectTimer !== undefined) clearTimeout(this.reconnectTimer);
    if (this.probeTimer !== undefined) clearInterval(this.probeTimer);
    this.failFences(new Error('listener stopped'));
    this.isConnected = false;
    this.sessionSeq++;
    await this.sql.end({ timeout: 1 }).catch(() => undefined);
  }

  /**
   * Wait until every notification committed before now has been handled. Resolves false
   * at once when disconnected (nothing is being delivered); rejects on timeout, and then
   * the listener is declared disconnected (it cannot follow the feeds).
   */
  async fence(timeoutMs: number): Promise<boolean> {
    if (!this.isConnected) return false;
    const sql = this.sql;
    const seq = this.sessionSeq;
    const id = `${this.fenceTag}:${this.fenceSequence++}`;
    const arrived = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fences.delete(id);
        reject(new Error(`recompute fence not delivered within ${timeoutMs} ms`));
      }, timeoutMs);
      this.fences.set(id, { resolve, reject, timer });
    });
    // Not awaited: a stalled connection never settles it; the arrival (or its timer) decides.
    sql`SELECT pg_notify(${FENCE_CHANNEL}, ${id})`.catch((error: unknown) =>
      this.settleFence(id, error instanceof Error ? error : new Error(String(error))),
    );
    try {
      await arrived;
    } catch (error) {
      if (seq === this.sessionSeq && this.isConnected)
        this.onClose(`self-notify not delivered: ${error instanceof Error ? error.message : String(error)}`);
      throw error;
    }
    return true;
  }

  private async listen(): Promise<void> {
    const seq = this.sessionSeq;
    const connectTimeoutMs = this.options.connectTimeoutMs ?? 3_000;
    await withDeadline(
      this.sql.unsafe(LISTEN_CHANNELS.map((channel) => `LISTEN "${channel}"`).join('; ')),
      connectTimeoutMs,
      'LISTEN',
    );
    if (seq !== this.sessionSeq || this.stopping) throw new Error('listener session replaced during LISTEN');
    const reconnect = this.everConnected;
    this.isConnected = true;
    this.everConnected = true;
    if (reconnect) this.counts.reconnects++;
    this.logger.info({ reconnect }, 'listener connected');
    this.startProbe();
    this.handlers.connected(reconnect);
  }

  /** Lost (closed, or a probe or fence came late): drop this session, reconnect on a fresh one. */
  private onClose(reason: string): void {
    if (this.stopping) return;
    if (this.isConnected) {
      this.isConnected = false;
      this.failFences(new Error(`listener ${reason}`));
      this.logger.warn({ reason }, 'listener disconnected; reconnecting on a fresh session');
      this.handlers.disconnected(reason);
    }
    this.replaceSession();
    this.scheduleReconnect(this.options.initialBackoffMs ?? 100);
  }

  private replaceSession(): void {
    const old = this.sql;
    this.sql = this.openSession();
    void old.end({ timeout: 0 }).catch(() => undefined);
  }

  private startProbe(): void {
    if (this.probeTimer !== undefined) return;
    this.probeTimer = setInterval(() => {
      if (!this.isConnected || this.probing || this.stopping) return;
      this.probing = true;
      // fence() itself declares the listener disconnected when the probe comes late.
      this.fence(this.options.probeTimeoutMs ?? 2_000)
        .catch(() => undefined)
        .finally(() => (this.probing = false));
    }, this.options.probeIntervalMs ?? 1_000);
    this.probeTimer.unref();
  }

  private scheduleReconnect(delayMs: number): void {
    if (this.stopping || this.reconnecting) return;
    this.reconnecting = true;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.listen().then(
        () => {
          this.reconnecting = false;
        },
        (error: unknown) => {
          this.reconnecting = false;
          if (this.stopping) return;
          // The attempt's session may be stalled: never retry on it.
          this.replaceSession();
          const next = Math.min(delayMs * 2, this.options.maxBackoffMs ?? 1_000);
          this.logger.warn({ err: String(error), retryInMs: next }, 'listener reconnect failed');
          this.scheduleReconnect(next);
        },
      );
    }, delayMs);
  }

  private onNotify(channel: string, payload: string): void {
    if (channel !== FENCE_CHANNEL) this.lastNotificationAt = Date.now();
    switch (channel) {
      case RELEASE_CHANNEL:
        return this.dispatch(channel, parseRelease(payload), payload, (message) => {
          this.counts.release++;
          this.handlers.release(message);
        });
      case LIMIT_CHANGE_CHANNEL:
        return this.dispatch(channel, parseLimitChange(payload), payload, (changes) => {
          this.counts.limit_change++;
          this.handlers.limitChanges(changes);
        });
      case MANAGED_CHANGE_CHANNEL:
        return this.dispatch(channel, parseManagedChange(payload), payload, (message) => {
          this.counts.managed_change++;
          this.handlers.managedChange(message);
        });
      case FENCE_CHANNEL:
        return this.settleFence(payload);
      case PROBE_CHANNEL:
        this.counts.probe++;
        return;
    }
  }

  private dispatch<T>(
    channel: string,
    parsed: ParseResult<T>,
    payload: string,
    apply: (value: T) => void,
  ): void {
    if (parsed.ok) {
      apply(parsed.value);
      return;
    }
    this.counts.dropped++;
    this.handlers.dropped(channel, parsed.reason, parsed.error, payload);
  }

  private settleFence(id: string, error?: Error): void {
    const fence = this.fences.get(id);
    if (fence === undefined) return; // another daemon's fence, or one that timed out
    this.fences.delete(id);
    clearTimeout(fence.timer);
    if (error === undefined) fence.resolve();
    else fence.reject(error);
  }

  private failFences(error: Error): void {
    for (const id of [...this.fences.keys()]) this.settleFence(id, error);
  }
}
