/**
 * Prometheus metrics (prom-client): one registry per daemon, so tests and a standby
 * takeover in one process never share counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { VERTEX_KINDS } from '../core/types.js';

export class Metrics {
  readonly registry = new Registry();

  readonly bookings = new Counter({
    name: 'cueacct_bookings_total',
    help: 'Booking requests by result (applied, limit_exceeded, not_managed, not_ready) and, for rejections, the cap table.',
    labelNames: ['result', 'table'] as const,
    registers: [this.registry],
  });
  readonly settlements = new Counter({
    name: 'cueacct_settlements_total',
    help: 'Applied bookings ended, by how (confirmed, rolled_back, lease_expired).',
    labelNames: ['how'] as const,
    registers: [this.registry],
  });
  readonly leaseExpired = new Counter({
    name: 'cueacct_lease_expired_total',
    help: 'In-flight bookings whose lease expired and were settled as a confirm.',
    registers: [this.registry],
  });
  readonly jobMoves = new Counter({
    name: 'cueacct_job_moves_total',
    help: 'Jobs found in another folder than the store held them under; their usage was moved.',
    registers: [this.registry],
  });
  readonly keyReads = new Counter({
    name: 'cueacct_key_reads_total',
    help: 'Reads of booking keys the store did not know (new jobs, folders, subscriptions; moved jobs).',
    registers: [this.registry],
  });
  readonly lateSettlements = new Counter({
    name: 'cueacct_late_settlements_total',
    help: 'Confirms and rollbacks that broke the client contract: after the lease expired (lease_expired) or of a booking the daemon does not know (unknown_booking).',
    labelNames: ['op', 'reason'] as const,
    registers: [this.registry],
  });
  /** Read at scrape time rather than set on every booking (it is on the hot path). */
  inflightSource: () => number = () => 0;
  readonly inflight: Gauge = new Gauge({
    name: 'cueacct_inflight_bookings',
    help: 'Applied bookings not yet confirmed, rolled back or expired.',
    registers: [this.registry],
    collect: (): void => this.inflight.set(this.inflightSource()),
  });
  readonly releasesApplied = new Counter({
    name: 'cueacct_releases_applied_total',
    help: 'acct_release notifications applied to the store.',
    registers: [this.registry],
  });
  readonly lastRelease = new Gauge({
    name: 'cueacct_last_release_timestamp_seconds',
    help: 'Unix time the last acct_release notification was applied (release lag: time() minus this).',
    registers: [this.registry],
  });
  readonly limitChangesApplied = new Counter({
    name: 'cueacct_limit_changes_applied_total',
    help: 'Single-field cap changes from acct_limit_change applied to the store.',
    registers: [this.registry],
  });
  readonly notificationsDropped = new Counter({
    name: 'cueacct_notifications_dropped_total',
    help: 'Malformed notifications dropped, by channel and reason (too_long, not_json, invalid).',
    labelNames: ['channel', 'reason'] as const,
    registers: [this.registry],
  });
  readonly listenerConnected = new Gauge({
    name: 'cueacct_listener_connected',
    help: '1 while the LISTEN connection is up.',
    registers: [this.registry],
  });
  readonly listenerReconnects = new Counter({
    name: 'cueacct_listener_reconnects_total',
    help: 'Times the LISTEN connection was re-established after a loss.',
    registers: [this.registry],
  });
  /** Read at scrape time: readiness also ends by the clock (the lock's lease), not only by events. */
  lockHeldSource: (() => boolean) | undefined;
  readonly lockHeld: Gauge = new Gauge({
    name: 'cueacct_lock_held',
    help: '1 while this process holds the N=1 advisory lock.',
    registers: [this.registry],
    collect: (): void => {
      if (this.lockHeldSource !== undefined) this.lockHeld.set(this.lockHeldSource() ? 1 : 0);
    },
  });
  readySource: (() => boolean) | undefined;
  readonly ready: Gauge = new Gauge({
    name: 'cueacct_ready',
    help: '1 when seeded, following the feeds and serving a valid lock lease (bookings accepted).',
    registers: [this.registry],
    collect: (): void => {
      if (this.readySource !== undefined) this.ready.set(this.readySource() ? 1 : 0);
    },
  });
  /** The lock's state and the age of its last ownership proof, read at scrape time. */
  lockSource: (() => { state: string; proofAgeSeconds: number | null }) | undefined;
  readonly lockState: Gauge = new Gauge({
    name: 'cueacct_lock_state',
    help: 'The N=1 lock state machine: 1 for the current state (standby, acquiring, syncing, serving, fenced, stopped), 0 for the others.',
    labelNames: ['state'] as const,
    registers: [this.registry],
    collect: (): void => {
      const current = this.lockSource?.().state;
      if (current === undefined) return;
      for (const state of ['standby', 'acquiring', 'syncing', 'serving', 'fenced', 'stopped'])
        this.lockState.set({ state }, state === current ? 1 : 0);
    },
  });
  readonly lockHandovers = new Counter({
    name: 'cueacct_lock_handovers_total',
    help: 'Acquisitions of the N=1 lock after a wait or a loss (standby takeovers and re-acquires).',
    registers: [this.registry],
  });
  readonly lockProofAge: Gauge = new Gauge({
    name: 'cueacct_lock_last_proof_age_seconds',
    help: 'Seconds since the last successful ownership probe of the N=1 lock started (+Inf before the first); bookings stop when it reaches the lock TTL.',
    registers: [this.registry],
    collect: (): void => {
      if (this.lockSource === undefined) return;
      this.lockProofAge.set(this.lockSource().proofAgeSeconds ?? Number.POSITIVE_INFINITY);
    },
  });
  readonly passDuration = new Histogram({
    name: 'cueacct_pass_duration_seconds',
    help: 'Duration of loop passes (recompute, reseed, shows_refresh, bootstrap).',
    labelNames: ['pass'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly recomputeDuration = new Histogram({
    name: 'cueacct_recompute_duration_seconds',
    help: 'Duration of recompute passes (snapshot read, fence, overwrite, PG table rewrite).',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly passFailures = new Counter({
    name: 'cueacct_pass_failures_total',
    help: 'Loop passes that failed (retried next tick), by pass.',
    labelNames: ['pass'] as const,
    registers: [this.registry],
  });
  readonly recomputeDrift = new Gauge({
    name: 'cueacct_recompute_drift_cores',
    help: 'Sum of |store - (SUM(proc) + carried)| cores found by the last recompute, per vertex kind.',
    labelNames: ['vertex'] as const,
    registers: [this.registry],
  });
  readonly recomputeDriftGpus = new Gauge({
    name: 'cueacct_recompute_drift_gpus',
    help: 'Sum of |store - (SUM(proc) + carried)| GPUs found by the last recompute, per vertex kind.',
    labelNames: ['vertex'] as const,
    registers: [this.registry],
  });
  readonly lastRecompute = new Gauge({
    name: 'cueacct_last_recompute_timestamp_seconds',
    help: 'Unix time of the last successful recompute.',
    registers: [this.registry],
  });
  readonly lastReseed = new Gauge({
    name: 'cueacct_last_reseed_timestamp_seconds',
    help: 'Unix time of the last successful limit reseed. A missed cap decrease is enforced by then at the latest.',
    registers: [this.registry],
  });
  readonly managedShows = new Gauge({
    name: 'cueacct_managed_shows',
    help: 'Shows published as scheduler-managed.',
    registers: [this.registry],
  });
  readonly deferredShows = new Gauge({
    name: 'cueacct_deferred_shows',
    help: 'Shows managed in the database whose seed failed (bookings answer not_managed until it succeeds).',
    registers: [this.registry],
  });
  readonly capsExceeded = new Gauge({
    name: 'cueacct_vertices_over_cap',
    help: 'Vertices whose live counter is above an enforced cap (after a cap decrease), per vertex kind.',
    labelNames: ['vertex'] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics !== false)
      collectDefaultMetrics({ register: this.registry, prefix: 'cueacct_' });
    for (const vertex of VERTEX_KINDS) {
      this.recomputeDrift.set({ vertex }, 0);
      this.recomputeDriftGpus.set({ vertex }, 0);
      this.capsExceeded.set({ vertex }, 0);
    }
  }
}
