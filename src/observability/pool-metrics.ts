/**
 * Per-pool series for `/metrics`, read from the store at scrape time (never on the booking
 * path). Labels carry show and allocation *names* (ids when a name is unknown) so a dashboard
 * reads like the farm.
 *
 * Cardinality is bounded by the farm's configuration, not its traffic:
 * - `cueacct_show_refusals_total{show,table}`: managed shows × 5 tables (only tables that refused);
 * - per subscription (`--no-per-subscription-metrics` turns these off):
 *   `cueacct_subscription_booked_cores`, `cueacct_subscription_burst_cores` and
 *   `cueacct_subscription_refusals_total`, each managed shows × allocations.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { LimitTable } from '../core/types.js';

export interface PoolSnapshot {
  subscriptions: { show: string; alloc: string; cores: number; burst: number; refusals: number }[];
  /** Refusals summed over the show's vertices, per table. */
  showRefusals: { show: string; table: LimitTable; refusals: number }[];
}

export interface PoolMetricsOptions {
  /** The per-subscription series; default true. */
  perSubscription?: boolean;
}

/** Register the per-pool series on `registry`, filled from `source()` on every scrape. */
export function registerPoolMetrics(
  registry: Registry,
  source: () => PoolSnapshot,
  options: PoolMetricsOptions = {},
): void {
  // One snapshot per scrape, shared by the collectors below (each collect would read it again).
  let cached: { snapshot: PoolSnapshot; at: number } | undefined;
  const read = (): PoolSnapshot => {
    const now = Date.now();
    if (cached === undefined || now - cached.at > 100) cached = { snapshot: source(), at: now };
    return cached.snapshot;
  };

  const showRefusals: Counter<'show' | 'table'> = new Counter({
    name: 'cueacct_show_refusals_total',
    help: 'Bookings refused by a cap of the show, by cap table (subscription, folder, job, folder_gpus, job_gpus).',
    labelNames: ['show', 'table'] as const,
    registers: [registry],
    collect: () => {
      showRefusals.reset();
      for (const row of read().showRefusals)
        showRefusals.inc({ show: row.show, table: row.table }, row.refusals);
    },
  });
  if (options.perSubscription === false) return;

  const booked: Gauge<'show' | 'alloc'> = new Gauge({
    name: 'cueacct_subscription_booked_cores',
    help: 'Live booked cores of one subscription (show, allocation).',
    labelNames: ['show', 'alloc'] as const,
    registers: [registry],
    collect: () => {
      booked.reset();
      for (const row of read().subscriptions) booked.set({ show: row.show, alloc: row.alloc }, row.cores);
    },
  });
  const burst: Gauge<'show' | 'alloc'> = new Gauge({
    name: 'cueacct_subscription_burst_cores',
    help: 'Burst (the hard cap, whole cores) of one subscription; 0 refuses every booking.',
    labelNames: ['show', 'alloc'] as const,
    registers: [registry],
    collect: () => {
      burst.reset();
      for (const row of read().subscriptions) burst.set({ show: row.show, alloc: row.alloc }, row.burst);
    },
  });
  const refused: Counter<'show' | 'alloc'> = new Counter({
    name: 'cueacct_subscription_refusals_total',
    help: 'Bookings refused by one subscription burst.',
    labelNames: ['show', 'alloc'] as const,
    registers: [registry],
    collect: () => {
      refused.reset();
      for (const row of read().subscriptions) refused.inc({ show: row.show, alloc: row.alloc }, row.refusals);
    },
  });
}
