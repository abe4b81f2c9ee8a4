/**
 * The simulated scheduler: books through the daemon's HTTP API, INSERTs a proc row (a new
 * frame on a host of the booking's allocation) for each applied booking, then confirms — or
 * rolls back when its "launch fails", or "dies" and leaves the booking to its lease.
 *
 * Each worker is strictly sequential (book → insert → settle → next), and workers book
 * disjoint shows, so the operations on any one vertex are totally ordered: the audit can
 * replay them exactly.
 */
import { randomUUID } from 'node:crypto';
import type { LimitTable } from '../core/types.js';
import { now, type Random } from './clock.js';
import type { SimContext } from './context.js';
import type { FarmShow } from './farm.js';
import { TransportError, type JsonAnswer } from './http-client.js';
import type { BookingRecord, BookingTarget } from './types.js';

/** Cuebot's default memory reservation for a frame, in KiB. */
const MEM_KB = 3_355_443;

type Plan = 'confirm' | 'rollback' | 'abandon_before_insert' | 'abandon_after_insert';

interface Planned {
  record: BookingRecord;
  plan: Plan;
  host: string;
  layer: string;
  procId: string;
  frameId: string;
}

interface BookAnswer {
  status: number;
  body: Record<string, unknown>;
}

export class SchedulerWorker {
  private readonly rng: Random;
  private seq = 0;
  private readonly layers = new Map<string, string>();

  constructor(
    private readonly index: number,
    private readonly ctx: SimContext,
    private readonly shows: readonly FarmShow[],
  ) {
    this.rng = ctx.random(index + 1);
    for (const show of shows) for (const job of show.jobs) this.layers.set(job.id, job.layer);
  }

  async run(): Promise<void> {
    if (this.shows.length === 0) return;
    const { rate, workers, batchSize } = this.ctx.options;
    const interval = rate > 0 ? (1000 * batchSize * workers) / rate : 0;
    let nextAt = now();
    while (!this.ctx.stopping) {
      if (interval > 0) {
        const wait = nextAt - now();
        if (wait > 0) await this.ctx.pause(wait);
        if (this.ctx.stopping) break;
        nextAt += interval;
        // Do not build up a burst after a stall.
        if (now() - nextAt > 1_000) nextAt = now();
      }
      await this.tick();
    }
  }

  private target(): BookingTarget {
    const show = this.rng.pick(this.shows);
    const job = this.rng.pick(show.jobs);
    const { cores, gpus, gpuShare } = this.ctx.options;
    return {
      show: show.id,
      alloc: this.rng.pick(show.allocs),
      folder: job.folder,
      job: job.id,
      cores: this.rng.int(cores[0], cores[1]),
      gpus: this.rng.chance(gpuShare) ? this.rng.int(gpus[0], gpus[1]) : 0,
    };
  }

  private async tick(): Promise<void> {
    const ctx = this.ctx;
    const n = ctx.options.batchSize;
    const targets = Array.from({ length: n }, () => this.target());
    const seqs = targets.map(() => this.seq++);
    ctx.counts.requested += n;
    const requestedAt = now();
    let answers: BookAnswer[];
    try {
      answers = await this.book(targets);
    } catch (err) {
      ctx.counts.lostBookRequests += n;
      this.failed('book', err);
      await ctx.pause(100);
      return;
    }
    const answeredAt = now();
    ctx.latency.book.add(answeredAt - requestedAt);

    const applied: BookingRecord[] = [];
    let notReady = 0;
    answers.forEach((answer, i) => {
      const target = targets[i]!;
      const body = answer.body;
      if (answer.status === 200 && body.result === 'applied') {
        const record: BookingRecord = {
          ...target,
          id: String(body.booking),
          worker: this.index,
          seq: seqs[i]!,
          requestedAt,
          appliedAt: answeredAt,
          leaseExpiresAt: Date.parse(String(body.lease_expires_at)),
          proc: null,
          fate: 'pending',
          settledAt: null,
          settleAnswer: null,
        };
        ctx.bookings.push(record);
        applied.push(record);
        ctx.counts.applied++;
      } else if (answer.status === 409 && body.result === 'limit_exceeded') {
        const table = body.table as LimitTable;
        ctx.rejections.push({
          ...target,
          worker: this.index,
          seq: seqs[i]!,
          requestedAt,
          answeredAt,
          table,
          current: Number(body.current),
          limit: Number(body.limit),
        });
        ctx.counts.rejected++;
        ctx.counts.rejectedBy[table] = (ctx.counts.rejectedBy[table] ?? 0) + 1;
      } else if (answer.status === 200 && body.result === 'not_managed') {
        ctx.counts.notManaged++;
      } else if (answer.status === 503) {
        ctx.counts.notReady++;
        notReady++;
      } else {
        ctx.counts.unexpected++;
        ctx.error(`book answered ${answer.status} ${JSON.stringify(body).slice(0, 200)}`);
      }
    });
    if (notReady > 0) ctx.notReadyAt.push(answeredAt);
    if (ctx.counts.applied >= ctx.options.maxBookings) ctx.stop('max_bookings');
    if (applied.length > 0) await this.settle(applied);
    // Failing closed: do not spin while the daemon is not ready.
    if (notReady === n) await ctx.pause(50);
  }

  private async book(targets: BookingTarget[]): Promise<BookAnswer[]> {
    if (targets.length === 1) {
      const answer = await this.ctx.api.post('/v1/book', targets[0]);
      return [{ status: answer.status, body: asObject(answer) }];
    }
    const answer = await this.ctx.api.post('/v1/batch', { ops: targets.map((t) => ({ op: 'book', ...t })) });
    if (answer.status !== 200 || !Array.isArray(answer.body?.results)) {
      // A whole-request failure (e.g. 503 from a proxy, 400 on a bug): every booking lost the same way.
      return targets.map(() => ({ status: answer.status, body: asObject(answer) }));
    }
    return (answer.body.results as Record<string, unknown>[]).map((r) => ({
      status: Number(r.status),
      body: r,
    }));
  }

  /** Insert the procs, then confirm or roll back; the abandoned are left alone. */
  private async settle(applied: BookingRecord[]): Promise<void> {
    const ctx = this.ctx;
    const { rollbackShare, abandonShare } = ctx.options;
    const planned: Planned[] = applied.map((record) => {
      let plan: Plan = 'confirm';
      if (this.rng.chance(rollbackShare)) plan = 'rollback';
      else if (this.rng.chance(abandonShare))
        plan = this.rng.chance(0.5) ? 'abandon_after_insert' : 'abandon_before_insert';
      const hosts = ctx.farm.hostsByAlloc.get(record.alloc)!;
      return {
        record,
        plan,
        host: this.rng.pick(hosts),
        layer: this.layers.get(record.job)!,
        procId: randomUUID(),
        frameId: randomUUID(),
      };
    });

    const toInsert = planned.filter((p) => p.plan === 'confirm' || p.plan === 'abandon_after_insert');
    if (toInsert.length > 0) await this.insert(toInsert);

    const ops: { op: 'confirm' | 'rollback'; booking: string; planned: Planned }[] = [];
    for (const p of planned) {
      if (p.plan === 'confirm') ops.push({ op: 'confirm', booking: p.record.id, planned: p });
      else if (p.plan === 'rollback') ops.push({ op: 'rollback', booking: p.record.id, planned: p });
      else {
        p.record.fate = 'abandoned';
        ctx.counts.abandoned++;
        if (p.record.proc !== null) this.releasable(p);
      }
    }
    if (ops.length === 0) return;

    const results = await this.settleOps(ops.map(({ op, booking }) => ({ op, booking })));
    const settledAt = now();
    ops.forEach(({ op, planned: p }, i) => {
      const answer = results?.[i];
      const record = p.record;
      record.settledAt = settledAt;
      if (answer === undefined) {
        record.settleAnswer = 'transport_error';
        record.fate = 'abandoned';
        ctx.counts.abandoned++;
        if (record.proc !== null) this.releasable(p);
        return;
      }
      const word = String(answer.result ?? answer.error ?? `status ${answer.status}`);
      record.settleAnswer = word;
      if (word === 'lease_expired') ctx.counts.settleLeaseExpired++;
      else if (word === 'unknown_booking') ctx.counts.settleUnknown++;
      else if (word !== 'confirmed' && word !== 'rolled_back') {
        ctx.counts.unexpected++;
        ctx.error(`${op} ${record.id} answered ${answer.status} ${word}`);
      }
      if (op === 'confirm') {
        record.fate = 'confirmed';
        ctx.counts.confirmed++;
        ctx.latency.endToEnd.add(settledAt - record.requestedAt);
        this.releasable(p);
      } else {
        record.fate = 'rolled_back';
        ctx.counts.rolledBack++;
      }
    });
  }

  /** The settle batch; retried on transport errors. Undefined when it never got through. */
  private async settleOps(
    ops: { op: 'confirm' | 'rollback'; booking: string }[],
  ): Promise<Record<string, unknown>[] | undefined> {
    const ctx = this.ctx;
    for (let attempt = 1; attempt <= 5; attempt++) {
      const started = now();
      try {
        const answer: JsonAnswer = await ctx.api.post('/v1/batch', { ops });
        ctx.latency.settle.add(now() - started);
        if (answer.status === 200 && Array.isArray(answer.body?.results)) return answer.body.results;
        ctx.counts.unexpected++;
        ctx.error(`settle batch answered ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`);
      } catch (err) {
        this.failed('settle', err);
      }
      await ctx.pause(100 * attempt);
      if (ctx.stopping && attempt >= 3) break;
    }
    return undefined;
  }

  /**
   * One set-based INSERT of the frames and procs. On failure, find out which procs exist:
   * those that do are confirmed, those that do not are rolled back, and while that cannot be
   * known (database down) the booking is kept, never rolled back: rolling back a booking
   * whose proc committed would under-count.
   */
  private async insert(planned: Planned[]): Promise<void> {
    const ctx = this.ctx;
    const mult = ctx.options.coreMultiplier;
    const started = now();
    try {
      await ctx.sql`
        WITH input AS (
          SELECT * FROM unnest(${planned.map((p) => p.procId)}::text[], ${planned.map((p) => p.frameId)}::text[],
                               ${planned.map((p) => p.layer)}::text[], ${planned.map((p) => p.record.job)}::text[],
                               ${planned.map((p) => p.record.show)}::text[], ${planned.map((p) => p.host)}::text[],
                               ${planned.map((p) => p.record.cores * mult)}::int8[],
                               ${planned.map((p) => p.record.gpus)}::int4[])
                   AS u(proc, frame, layer, job, show, host, cores, gpus)
        ), frames AS (
          INSERT INTO frame (pk_frame, pk_layer, pk_job, str_name, str_state)
          SELECT frame, layer, job, 'sim-' || frame, 'RUNNING' FROM input
        )
        INSERT INTO proc (pk_proc, pk_host, pk_job, pk_show, pk_layer, pk_frame,
                          int_cores_reserved, int_mem_reserved, int_gpus_reserved, b_local)
        SELECT proc, host, job, show, layer, frame, cores, ${MEM_KB}, gpus, false FROM input`;
      ctx.latency.insert.add(now() - started);
      ctx.counts.procsInserted += planned.length;
      for (const p of planned) p.record.proc = p.procId;
      return;
    } catch (err) {
      ctx.counts.procInsertFailures++;
      this.failed('proc insert', err);
    }
    const existing = await this.existingProcs(planned.map((p) => p.procId));
    for (const p of planned) {
      if (existing === undefined) {
        // Unknown: keep the booking (left to its lease); the run resolves it at the end.
        p.record.proc = p.procId;
        p.record.procUnknown = true;
        p.plan = 'abandon_after_insert';
      } else if (existing.has(p.procId)) {
        p.record.proc = p.procId;
        ctx.counts.procsInserted++;
      } else if (p.plan === 'confirm') {
        p.plan = 'rollback';
      } else {
        p.plan = 'abandon_before_insert';
      }
    }
  }

  /** Which of these procs exist; undefined if the database does not answer within ~5 s. */
  private async existingProcs(ids: string[]): Promise<Set<string> | undefined> {
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        const rows = await this.ctx.sql<
          { id: string }[]
        >`SELECT pk_proc AS id FROM proc WHERE pk_proc = ANY(${ids})`;
        return new Set(rows.map((r) => r.id));
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    return undefined;
  }

  private releasable(p: Planned): void {
    const r = p.record;
    if (r.proc === null || r.procUnknown) return;
    this.ctx.releasable.push({
      id: r.proc,
      show: r.show,
      alloc: r.alloc,
      folder: r.folder,
      job: r.job,
      cores: r.cores,
      gpus: r.gpus,
      since: now(),
    });
  }

  private failed(what: string, err: unknown): void {
    if (err instanceof TransportError) this.ctx.counts.transportErrors++;
    this.ctx.error(
      `worker ${this.index}: ${what} failed: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

function asObject(answer: JsonAnswer): Record<string, unknown> {
  return typeof answer.body === 'object' && answer.body !== null
    ? answer.body
    : { error: String(answer.body) };
}
