/**
 * A small {@link BookingService} over a real {@link Store}, for the HTTP tests and the HTTP
 * benchmark. It stands in for the service facade (not for PostgreSQL): booking ids come from
 * a Map, leases expire only when a test says so, state/status are built minimally, and the
 * admin passes resolve at once unless a test holds them with a gate.
 */
import type { StateResponse, StatusResponse, VertexState } from '../../src/api/types.js';
import { Booking, Store } from '../../src/core/store.js';
import type { BookingRequest, CapSet } from '../../src/core/types.js';
import { VERTEX_KINDS } from '../../src/core/types.js';
import type { BookingService, BookResult, StateQuery } from '../../src/service/types.js';

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type Pass = 'recompute' | 'reseed' | 'refreshShows';

export class StoreBookingService implements BookingService {
  ready = true;
  readonly store = new Store();
  /** Shows whose bookings are accepted; others answer not_managed. */
  readonly managed = new Set<string>();
  leaseMs = 120_000;
  /** Queries `state()` was called with. */
  readonly stateQueries: StateQuery[] = [];
  /** Calls of each admin pass. */
  readonly passes: Pass[] = [];
  /** While set, the pass waits for this promise (and `started` resolves when it begins). */
  readonly gates = new Map<Pass, { started: Deferred; release: Deferred }>();
  /** Make a pass fail with this error. */
  readonly failures = new Map<Pass, Error>();
  private readonly live = new Map<string, Booking>();
  private readonly expired = new Set<string>();
  private nextId = 1;

  constructor(caps?: CapSet) {
    if (caps !== undefined) {
      this.store.setCaps(caps);
      for (const sub of caps.subscriptions) this.managed.add(sub.show);
    }
  }

  book(request: BookingRequest): BookResult {
    if (!this.ready) return { error: 'not_ready' };
    if (!this.managed.has(request.show)) return { result: 'not_managed' };
    const outcome = this.store.book(request);
    if (!(outcome instanceof Booking)) {
      return {
        result: 'limit_exceeded',
        table: outcome.table,
        current: outcome.current,
        limit: outcome.limit,
      };
    }
    const id = `bk-${this.nextId++}`;
    this.live.set(id, outcome);
    const expiry = this.leaseExpiry();
    return { result: 'applied', booking: id, lease_expires_at: expiry, insert_deadline: expiry };
  }

  private expiryAt = 0;
  private expiryText = '';

  /** The lease end as ISO text, formatted once per millisecond. */
  private leaseExpiry(): string {
    const at = Date.now() + this.leaseMs;
    if (at !== this.expiryAt) {
      this.expiryAt = at;
      this.expiryText = new Date(at).toISOString();
    }
    return this.expiryText;
  }

  confirm(booking: string) {
    const settled = this.take(booking);
    if (typeof settled === 'string') return { error: settled };
    this.store.confirm(settled);
    return { result: 'confirmed' as const };
  }

  rollback(booking: string) {
    const settled = this.take(booking);
    if (typeof settled === 'string') return { error: settled };
    this.store.rollback(settled);
    return { result: 'rolled_back' as const };
  }

  /** Let a booking's lease run out: it is settled as a confirm would. */
  expire(booking: string): void {
    const applied = this.live.get(booking);
    if (applied === undefined) throw new Error(`no live booking ${booking}`);
    this.live.delete(booking);
    this.store.confirm(applied);
    this.expired.add(booking);
  }

  private take(booking: string): Booking | 'unknown_booking' | 'lease_expired' {
    const applied = this.live.get(booking);
    if (applied !== undefined) {
      this.live.delete(booking);
      return applied;
    }
    return this.expired.has(booking) ? 'lease_expired' : 'unknown_booking';
  }

  state(query: StateQuery): StateResponse {
    this.stateQueries.push(query);
    const vertices: VertexState[] = [];
    for (const kind of query.vertex === undefined ? VERTEX_KINDS : [query.vertex]) {
      for (const v of this.store.vertices(kind)) {
        if (query.show !== undefined && v.show !== query.show) continue;
        vertices.push({
          kind,
          key: kind === 'subscription' ? `${v.show}/${v.id}` : v.id,
          show: v.show ?? null,
          alloc: v.alloc ?? null,
          name: null,
          show_name: null,
          cores: v.cores,
          gpus: v.gpus,
          inflight_cores: v.inflightCores,
          inflight_gpus: v.inflightGpus,
          settled_cores: v.settledCores(0) + v.settledCores(1),
          settled_gpus: v.settledGpus(0) + v.settledGpus(1),
          max_cores: v.maxCores,
          max_gpus: v.maxGpus,
          utilization: null,
        });
      }
    }
    const total = vertices.length;
    return {
      epoch: this.store.epoch,
      vertices: query.top === undefined ? vertices : vertices.slice(0, query.top),
      total,
    };
  }

  status(): StatusResponse {
    const pass = { at: null, duration_ms: null, ok: null, error: null };
    return {
      version: '',
      uptime_s: 0,
      ready: this.ready,
      lock_held: this.ready,
      listener: {
        connected: true,
        reconnects: 0,
        applied: { release: 0, limit_change: 0, managed_change: 0, probe: 0 },
        dropped: 0,
        last_notification_at: null,
      },
      last_recompute: { ...pass, drift: null },
      last_reseed: pass,
      last_shows_refresh: pass,
      epoch: this.store.epoch,
      inflight: this.store.inflightCount,
      managed_shows: [...this.managed].map((id) => ({ id, name: null })),
      deferred_shows: [],
      bookings: { applied: 0, rejected: 0, not_managed: 0, lease_expired: this.expired.size },
      counts: {
        subscription: this.store.count('subscription'),
        folder: this.store.count('folder'),
        job: this.store.count('job'),
      },
    };
  }

  /** Hold the next run of `pass` until the returned gate is released. */
  hold(pass: Pass): { started: Promise<void>; release: () => void } {
    const gate = { started: deferred(), release: deferred() };
    this.gates.set(pass, gate);
    return { started: gate.started.promise, release: () => gate.release.resolve() };
  }

  recompute(): Promise<void> {
    return this.run('recompute');
  }

  reseed(): Promise<void> {
    return this.run('reseed');
  }

  refreshShows(): Promise<void> {
    return this.run('refreshShows');
  }

  private async run(pass: Pass): Promise<void> {
    this.passes.push(pass);
    const gate = this.gates.get(pass);
    if (gate !== undefined) {
      this.gates.delete(pass);
      gate.started.resolve();
      await gate.release.promise;
    }
    const failure = this.failures.get(pass);
    if (failure !== undefined) throw failure;
  }
}
