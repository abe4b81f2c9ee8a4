/**
 * `runSimulation`: a bounded load against a running daemon and its database — a simulated
 * scheduler (book → INSERT proc → confirm / rollback / die) and a simulated Cuebot (DELETE
 * proc + `acct_release`, cap changes + `acct_limit_change`) — returning a report with every
 * applied booking, rejection, release and cap change, time-ordered, for an audit.
 */
import postgres, { type Sql } from 'postgres';
import { now } from './clock.js';
import { SimContext, resolveOptions } from './context.js';
import { Cuebot } from './cuebot.js';
import { loadFarm, type FarmShow } from './farm.js';
import { ApiClient } from './http-client.js';
import { SchedulerWorker } from './scheduler.js';
import type { SimulationOptions, SimulationReport } from './types.js';

export async function runSimulation(options: SimulationOptions): Promise<SimulationReport> {
  const resolved = resolveOptions(options);
  if (options.sql === undefined && options.databaseUrl === undefined) {
    throw new Error('runSimulation: give databaseUrl or sql');
  }
  const ownPool = options.sql === undefined;
  const sql: Sql =
    options.sql ??
    postgres(options.databaseUrl!, {
      max: resolved.workers + 2,
      // postgres.js can lose the startup message of a reconnect after an abrupt close and then
      // waits for this timeout (default 30 s): keep the stall short when the database restarts.
      connect_timeout: 5,
      onnotice: () => undefined,
      connection: { application_name: 'cueacct-simulate' },
    });
  const api = new ApiClient({
    url: options.daemonUrl,
    ...(options.token === undefined ? {} : { token: options.token }),
    timeoutMs: resolved.requestTimeoutMs,
    maxSockets: resolved.workers + 1,
  });
  let progressTimer: NodeJS.Timeout | undefined;
  let durationTimer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    const farm = await loadFarm(sql, resolved.coreMultiplier, options.shows);
    if (farm.shows.length === 0) {
      throw new Error(
        'runSimulation: no bookable show (a show needs a subscription on an allocation with hosts, and a job)',
      );
    }
    const ctx = new SimContext(resolved, api, sql, farm);
    const startedAt = now();

    if (Number.isFinite(resolved.durationMs)) {
      durationTimer = setTimeout(() => ctx.stop('duration'), resolved.durationMs);
    }
    if (options.signal?.aborted) ctx.stop('signal');
    onAbort = () => ctx.stop('signal');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.onProgress !== undefined) {
      const report = options.onProgress;
      progressTimer = setInterval(
        () => report({ elapsedMs: now() - startedAt, counts: { ...ctx.counts } }),
        1_000,
      );
      progressTimer.unref();
    }

    // Shows dealt round-robin: no vertex is booked by two workers.
    const parts: FarmShow[][] = Array.from({ length: resolved.workers }, () => []);
    farm.shows.forEach((show, i) => parts[i % resolved.workers]!.push(show));
    const cuebot = new Cuebot(ctx);
    await Promise.all([
      ...parts.map((shows, i) => new SchedulerWorker(i, ctx, shows).run()),
      cuebot.runReleases(),
      cuebot.runCapChanges(),
    ]);
    const endedAt = now();
    await resolveUnknownProcs(ctx);

    ctx.bookings.sort((a, b) => a.appliedAt - b.appliedAt || a.worker - b.worker || a.seq - b.seq);
    ctx.rejections.sort((a, b) => a.answeredAt - b.answeredAt || a.worker - b.worker || a.seq - b.seq);
    ctx.releases.sort((a, b) => a.startedAt - b.startedAt);
    ctx.capChanges.sort((a, b) => a.startedAt - b.startedAt);
    const { sql: _sql, signal: _signal, onProgress: _onProgress, token: _token, ...shown } = options;
    return {
      startedAt,
      endedAt,
      stoppedBy: ctx.stoppedBy,
      seed: resolved.seed,
      options: shown,
      initial: farm.initial,
      counts: ctx.counts,
      bookings: ctx.bookings,
      rejections: ctx.rejections,
      releases: ctx.releases,
      capChanges: ctx.capChanges,
      notReadyAt: ctx.notReadyAt,
      latency: {
        book: ctx.latency.book.summary(),
        settle: ctx.latency.settle.summary(),
        insert: ctx.latency.insert.summary(),
        endToEnd: ctx.latency.endToEnd.summary(),
        release: ctx.latency.release.summary(),
      },
      bookingsPerSecond: ctx.counts.confirmed / Math.max(0.001, (endedAt - startedAt) / 1000),
      errors: ctx.errors,
    };
  } finally {
    clearTimeout(durationTimer);
    clearInterval(progressTimer);
    if (onAbort !== undefined) options.signal?.removeEventListener('abort', onAbort);
    api.close();
    if (ownPool) await sql.end({ timeout: 5 });
  }
}

/** Procs whose insert outcome was unknown (database down): look again now. */
async function resolveUnknownProcs(ctx: SimContext): Promise<void> {
  const unknown = ctx.bookings.filter((b) => b.procUnknown);
  if (unknown.length === 0) return;
  for (let attempt = 0; attempt < 20; attempt++) {
    try {
      const rows = await ctx.sql<{ id: string }[]>`
        SELECT pk_proc AS id FROM proc WHERE pk_proc = ANY(${unknown.map((b) => b.proc!)})`;
      const existing = new Set(rows.map((r) => r.id));
      for (const booking of unknown) {
        if (!existing.has(booking.proc!)) booking.proc = null;
        delete booking.procUnknown;
      }
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}
