/**
 * The simulated Cuebot: deletes procs the way Cuebot does — DELETE plus one `acct_release`
 * per proc in the same transaction (`releaseProcs`) — and now and then changes a cap with
 * `acct_limit_change` in the same transaction, as an admin tool does.
 */
import type { Sql } from 'postgres';
import { changeNodeLimits, changeSubscriptionBurst, deleteProcs, releaseProcs } from '../db/notify.js';
import { now, type Random } from './clock.js';
import type { SimContext } from './context.js';
import type { ReleasableProc } from './farm.js';
import { subscriptionKey, vertexId, type VertexRef } from './types.js';

interface CapTarget {
  vertex: VertexRef;
  show: string;
  alloc?: string;
  original: number;
  current: number;
}

export class Cuebot {
  private readonly rng: Random;
  private readonly capRng: Random;
  private readonly capTargets: CapTarget[] = [];

  constructor(private readonly ctx: SimContext) {
    this.rng = ctx.random(1_000);
    this.capRng = ctx.random(2_000);
    const caps = ctx.farm.initial.caps;
    const seen = new Set<string>();
    for (const show of ctx.farm.shows) {
      for (const alloc of show.allocs) {
        const key = subscriptionKey(show.id, alloc);
        const cap = caps[vertexId('subscription', key)];
        if (cap !== undefined && cap.maxCores > 0)
          this.capTargets.push({
            vertex: { kind: 'subscription', key },
            show: show.id,
            alloc,
            original: cap.maxCores,
            current: cap.maxCores,
          });
      }
      for (const job of show.jobs) {
        for (const [kind, id] of [
          ['folder', job.folder],
          ['job', job.id],
        ] as const) {
          if (seen.has(`${kind}:${id}`)) continue;
          seen.add(`${kind}:${id}`);
          const cap = caps[vertexId(kind, id)];
          if (cap !== undefined && cap.maxCores > 0)
            this.capTargets.push({
              vertex: { kind, key: id },
              show: show.id,
              original: cap.maxCores,
              current: cap.maxCores,
            });
        }
      }
    }
    if (ctx.options.releaseExisting) {
      const booked = new Set(ctx.farm.shows.map((s) => s.id));
      for (const proc of ctx.farm.procs) if (booked.has(proc.show)) ctx.releasable.push(proc);
    }
  }

  async runReleases(): Promise<void> {
    const { releaseRate, releaseBatch } = this.ctx.options;
    if (releaseRate <= 0) return;
    const started = now();
    let released = 0;
    while (!this.ctx.stopping) {
      const due = Math.floor(((now() - started) / 1000) * releaseRate) - released;
      if (due <= 0) {
        await this.ctx.pause(Math.max(5, Math.min(100, (1000 * releaseBatch) / releaseRate / 2)));
        continue;
      }
      const batch = this.pickBatch(Math.min(due, releaseBatch));
      if (batch.length === 0) {
        // Nothing old enough yet: let the scheduler book some.
        await this.ctx.pause(50);
        released += Math.min(due, releaseBatch);
        continue;
      }
      released += batch.length;
      await this.release(batch);
    }
  }

  async runCapChanges(): Promise<void> {
    const { capChangeRate } = this.ctx.options;
    if (capChangeRate <= 0 || this.capTargets.length === 0) return;
    while (!this.ctx.stopping) {
      // Exponential gaps: a Poisson process of cap changes.
      await this.ctx.pause((-Math.log(1 - this.capRng.next()) * 1000) / capChangeRate);
      if (this.ctx.stopping) break;
      await this.changeCap();
    }
  }

  /** Up to `n` procs old enough, at most one per job (identical payloads in one transaction fold into one notification). */
  private pickBatch(n: number): ReleasableProc[] {
    const pool = this.ctx.releasable;
    const minAge = this.ctx.options.releaseMinAgeMs;
    const youngest = now() - minAge;
    const jobs = new Set<string>();
    const batch: ReleasableProc[] = [];
    for (let tries = 0; batch.length < n && tries < n * 4 && pool.length > 0; tries++) {
      const i = Math.floor(this.rng.next() * pool.length);
      const proc = pool[i]!;
      if (proc.since > youngest || jobs.has(proc.job)) continue;
      pool[i] = pool[pool.length - 1]!;
      pool.pop();
      jobs.add(proc.job);
      batch.push(proc);
    }
    return batch;
  }

  private async release(batch: ReleasableProc[]): Promise<void> {
    const ctx = this.ctx;
    const silent = this.rng.chance(ctx.options.silentReleaseShare);
    const startedAt = now();
    const ids = batch.map((p) => p.id);
    try {
      // Silent: DELETE without acct_release, a release whose notification is lost.
      const rows = silent
        ? (await deleteProcs(ctx.sql, ids, ctx.options.coreMultiplier)).map((row) => ({
            ...row,
            notified: false,
          }))
        : await releaseProcs(ctx.sql, ids, ctx.options.coreMultiplier);
      const committedAt = now();
      ctx.latency.release.add(committedAt - startedAt);
      for (const row of rows) {
        ctx.releases.push({
          proc: row.proc,
          show: row.show,
          alloc: row.alloc,
          folder: row.folder,
          job: row.job,
          cores: -row.cores,
          gpus: -row.gpus,
          notified: row.notified,
          startedAt,
          committedAt,
        });
      }
      ctx.counts.released += rows.length;
      if (silent) ctx.counts.releasedSilently += rows.length;
    } catch (err) {
      ctx.counts.releaseFailures++;
      ctx.error(`release of ${ids.length} procs failed: ${err instanceof Error ? err.message : String(err)}`);
      await this.resolveFailedRelease(batch, startedAt);
    }
  }

  /** A failed release may still have committed: whatever is gone was released (at the attempt). */
  private async resolveFailedRelease(batch: ReleasableProc[], startedAt: number): Promise<void> {
    const ctx = this.ctx;
    for (let attempt = 0; attempt < 20 && !ctx.stopping; attempt++) {
      try {
        const rows = await ctx.sql<
          { id: string }[]
        >`SELECT pk_proc AS id FROM proc WHERE pk_proc = ANY(${batch.map((p) => p.id)})`;
        const still = new Set(rows.map((r) => r.id));
        for (const proc of batch) {
          if (still.has(proc.id)) {
            ctx.releasable.push(proc);
            continue;
          }
          ctx.releases.push({
            ...proc,
            proc: proc.id,
            notified: ctx.farm.initial.managed[proc.show] ?? false,
            startedAt,
            committedAt: now(),
          });
          ctx.counts.released++;
        }
        return;
      } catch {
        await ctx.pause(250);
      }
    }
    // Unknown; give the procs back (a later release of a missing proc deletes nothing).
    ctx.releasable.push(...batch);
  }

  private async changeCap(): Promise<void> {
    const ctx = this.ctx;
    const target = this.capRng.pick(this.capTargets);
    const [lo, hi] = ctx.options.capChangeFactor;
    const factor = lo + (hi - lo) * this.capRng.next();
    const to = Math.max(1, Math.round(target.original * factor));
    if (to === target.current) return;
    const mult = ctx.options.coreMultiplier;
    const startedAt = now();
    try {
      if (target.vertex.kind === 'subscription') {
        await changeSubscriptionBurst(
          ctx.sql,
          { show: target.show, alloc: target.alloc!, burstCenticores: to * mult },
          mult,
        );
      } else {
        await changeNodeLimits(
          ctx.sql,
          { vertex: target.vertex.kind, id: target.vertex.key, maxCoresCenticores: to * mult },
          mult,
        );
      }
      ctx.capChanges.push({
        vertex: target.vertex,
        field: 'max_cores',
        from: target.current,
        to,
        startedAt,
        committedAt: now(),
      });
      target.current = to;
      ctx.counts.capChanges++;
    } catch (err) {
      ctx.counts.capChangeFailures++;
      ctx.error(
        `cap change of ${target.vertex.kind} ${target.vertex.key} failed: ${err instanceof Error ? err.message : String(err)}`,
      );
      // It may have committed: read back the value, so later records start from the truth.
      try {
        const value = await readCap(ctx.sql, target, mult);
        if (value !== target.current) {
          ctx.capChanges.push({
            vertex: target.vertex,
            field: 'max_cores',
            from: target.current,
            to: value,
            startedAt,
            committedAt: now(),
          });
          target.current = value;
        }
      } catch {
        // Still down: the value stays as recorded; the audit grace covers an unknown commit only so far.
      }
    }
  }
}

async function readCap(sql: Sql, target: CapTarget, multiplier: number): Promise<number> {
  const rows =
    target.vertex.kind === 'subscription'
      ? await sql<
          { v: string }[]
        >`SELECT int_burst::text AS v FROM subscription WHERE pk_show = ${target.show} AND pk_alloc = ${target.alloc!}`
      : target.vertex.kind === 'folder'
        ? await sql<
            { v: string }[]
          >`SELECT int_max_cores::text AS v FROM folder_resource WHERE pk_folder = ${target.vertex.key}`
        : await sql<
            { v: string }[]
          >`SELECT int_max_cores::text AS v FROM job_resource WHERE pk_job = ${target.vertex.key}`;
  const v = Number(rows[0]?.v ?? 0);
  return v < 0 ? -1 : Math.trunc(v / multiplier);
}
