/**
 * `cueacct seed`: seed locally from the database (bootstrap, or the flip seed of one show),
 * or ask a running daemon to reseed its caps now.
 */
import { performance } from 'node:perf_hooks';

import type { StatusResponse } from '../api/types.js';
import { usageError } from '../cli/errors.js';
import { findShow, managedShows } from '../db/queries.js';
import { daemonClient, openDatabase } from './connect.js';
import { formatMs, plural, round3 } from './format.js';
import { runSeed, type SeedReport } from './seed-report.js';

export { renderSeedReport } from './seed-report.js';

export interface SeedOptions {
  databaseUrl: string | undefined;
  /** Name or id: the flip seed of that show; otherwise every managed show. */
  show: string | undefined;
  multiplier: number;
}

export async function seedFromDatabase(options: SeedOptions): Promise<SeedReport> {
  const db = await openDatabase(options.databaseUrl, 'cueacct-seed');
  try {
    if (options.show !== undefined) {
      const show = await findShow(db.sql, options.show);
      if (show === undefined) throw unknownShow(options.show);
      return await runSeed(db.sql, [show], options.multiplier, 'show');
    }
    const shows = (await managedShows(db.sql)).map((show) => ({ ...show, managed: true }));
    return await runSeed(db.sql, shows, options.multiplier, 'bootstrap');
  } finally {
    await db.close();
  }
}

/** Exit 2, naming what was typed. */
export function unknownShow(input: string) {
  return usageError(`unknown show "${input}": no show has that name or id`);
}

export interface DaemonReseed {
  mode: 'daemon';
  daemon: string;
  /** How long the daemon took to answer POST /v1/admin/reseed (it answers when the pass is done). */
  duration_ms: number;
  /** GET /v1/status after the reseed. */
  status: StatusResponse;
}

export async function reseedDaemon(url: string, token: string | undefined): Promise<DaemonReseed> {
  const client = daemonClient(url, token);
  try {
    const started = performance.now();
    await client.admin('reseed');
    const duration = performance.now() - started;
    const status = (await client.status()) as unknown as StatusResponse;
    return { mode: 'daemon', daemon: client.describe, duration_ms: round3(duration), status };
  } finally {
    client.close();
  }
}

export function renderDaemonReseed(result: DaemonReseed): string {
  const s = result.status;
  const lines = [`The daemon at ${result.daemon} reseeded its caps in ${formatMs(result.duration_ms)}.`];
  const managed = s.managed_shows ?? [];
  const counts = s.counts;
  lines.push(
    `ready: ${yesNo(s.ready)}  lock held: ${yesNo(s.lock_held)}  listener connected: ${yesNo(s.listener?.connected)}`,
  );
  lines.push(
    `managed shows: ${managed.length === 0 ? 'none' : managed.map((show) => show.name ?? show.id).join(', ')}`,
  );
  if (counts !== undefined) {
    lines.push(
      `vertices: ${plural(counts.subscription, 'subscription')}, ${plural(counts.folder, 'folder')}, ${plural(counts.job, 'job')}`,
    );
  }
  if (s.last_reseed?.at)
    lines.push(
      `last reseed: ${s.last_reseed.at}${s.last_reseed.ok === false ? ` (failed: ${s.last_reseed.error})` : ''}`,
    );
  for (const deferred of s.deferred_shows ?? []) {
    lines.push(`deferred show ${deferred.id}: ${deferred.error}`);
  }
  return lines.join('\n');
}

function yesNo(value: boolean | undefined): string {
  return value === undefined ? '?' : value ? 'yes' : 'no';
}
