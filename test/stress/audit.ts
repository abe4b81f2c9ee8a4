/**
 * The accounting audit run after every stress phase (issue 7). Against the database and the
 * daemon's API, after quiescence and one recompute:
 *
 * 1. every subscription/folder/job counter equals `SUM(proc)` of its grouping, cores and GPUs
 *    (and the PG accounting columns the recompute rewrites agree too);
 * 2. no counter leaked for a job with no procs;
 * 3. booked cores of a subscription never exceeded its burst at any moment;
 * 4. booked cores and GPUs of a job or folder never exceeded their caps;
 * 5. every booking the daemon applied ended exactly once: confirm, rollback or lease expiry.
 *
 * 3 and 4 replay the simulation report: the initial `SUM(proc)`, then every applied booking,
 * rollback, lease expiry and release in order. Each worker of the simulated scheduler is
 * sequential and owns its shows, so the order of operations on a vertex is exact; only the
 * releases of the simulated Cuebot race with it, and they are counted from the moment they
 * started (the daemon cannot have seen one earlier). The replay is therefore a lower bound
 * of what the daemon had booked when it accepted each booking: a booking that takes it above
 * a cap is a real breach, never an artefact of timing. Caps follow the recorded cap changes;
 * the old value of a decrease stays allowed for `capDecreaseGraceMs` after its commit (the
 * documented window of a missed decrease, SPEC §1).
 */
import type { Sql } from 'postgres';
import type { ApiClient, BookingRecord, SimulationReport, VertexCaps } from '../../src/simulate/index.js';
import { subscriptionKey, vertexId } from '../../src/simulate/index.js';
import type { BookingRequest, LimitTable, VertexKind } from '../../src/core/types.js';
import { collectStatePages } from '../../src/api/state-pages.js';
import type { StateResponse } from '../../src/api/types.js';
import { readTruth, managedShowIds } from './truth.js';

export interface DaemonTally {
  applied: number;
  confirmed: number;
  rolledBack: number;
  leaseExpired: number;
  inflight: number;
  dropped: number;
  reconnects: number;
}

/**
 * The whole `GET /v1/state` (every page, following `next_cursor`) for `query` (`?vertex=…` or
 * ''). A page that is not 200 ends the read with that status.
 */
export async function readState(
  api: ApiClient,
  query = '',
): Promise<{ status: number; body: StateResponse }> {
  let failed: { status: number; body: StateResponse } | undefined;
  const base = new URLSearchParams(query.replace(/^\?/, ''));
  const body = await collectStatePages(
    async (paging) => {
      const params = new URLSearchParams(base);
      for (const [key, value] of Object.entries(paging)) params.set(key, String(value));
      const qs = params.toString();
      const answer = await api.get(`/v1/state${qs === '' ? '' : `?${qs}`}`);
      if (answer.status !== 200) {
        failed = { status: answer.status, body: answer.body as StateResponse };
        return { epoch: 0, total: 0, vertices: [], next_cursor: null };
      }
      return answer.body as StateResponse;
    },
    { limit: 5_000, maxPages: 10_000, tooMany: () => new Error('GET /v1/state: too many pages') },
  );
  return failed ?? { status: 200, body };
}

/** One vertex as `GET /v1/state` lists it (whole cores and GPUs). */
export interface StateVertex {
  kind: VertexKind;
  key: string;
  cores: number;
  gpus: number;
  max_cores: number;
  max_gpus: number;
}

export interface AuditOptions {
  api: ApiClient;
  sql: Sql;
  /** The runs of the simulator against this daemon since `tallyBefore` (usually one). */
  reports: SimulationReport[];
  multiplier?: number;
  /** The daemon's lease: quiescence waits for expiries up to this long (plus slack). */
  leaseMs: number;
  /** How long after its commit a cap decrease may still be unknown to the daemon (default 2 s). */
  capDecreaseGraceMs?: number;
  /** Replay every rejection too: right table, current and limit (only exact without releases and cap changes). */
  checkRejections?: boolean;
  /** The daemon's counters before the runs: when given, its settlements must match the reports exactly. */
  tallyBefore?: DaemonTally;
  /** Run the recompute (default true); false when the phase already did and wants to see it healed alone. */
  recompute?: boolean;
}

export interface AuditResult {
  violations: string[];
  notes: string[];
}

const MAX_LISTED = 25;

function short(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}

function label(kind: VertexKind | string, key: string): string {
  if (kind === 'subscription') {
    const [show, alloc] = key.split('/');
    return `subscription ${short(show ?? '')}/${short(alloc ?? '')}`;
  }
  return `${kind} ${short(key)}`;
}

class Violations {
  readonly list: string[] = [];
  private readonly counts = new Map<string, number>();

  add(check: string, message: string): void {
    const n = (this.counts.get(check) ?? 0) + 1;
    this.counts.set(check, n);
    if (n <= MAX_LISTED) this.list.push(`[${check}] ${message}`);
    else if (n === MAX_LISTED + 1) this.list.push(`[${check}] … more violations of this check not listed`);
  }
}

export async function daemonTally(api: ApiClient): Promise<DaemonTally> {
  const [status, metrics] = await Promise.all([api.get('/v1/status'), api.get('/metrics')]);
  if (status.status !== 200) throw new Error(`GET /v1/status answered ${status.status}`);
  const text = String(metrics.body);
  const settled = (how: string) => {
    const m = new RegExp(`^cueacct_settlements_total\\{how="${how}"\\} (\\d+)`, 'm').exec(text);
    return m === null ? 0 : Number(m[1]);
  };
  return {
    applied: status.body.bookings.applied,
    confirmed: settled('confirmed'),
    rolledBack: settled('rolled_back'),
    leaseExpired: settled('lease_expired'),
    inflight: status.body.inflight,
    dropped: status.body.listener.dropped,
    reconnects: status.body.listener.reconnects,
  };
}

/** Wait (polling, bounded) until `check` returns true. */
export async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

export async function audit(options: AuditOptions): Promise<AuditResult> {
  const { api, sql } = options;
  const multiplier = options.multiplier ?? 100;
  const v = new Violations();
  const notes: string[] = [];
  const bookings = options.reports.flatMap((r) => r.bookings);

  // ---- quiescence: daemon ready, listener up, nothing in flight (leases expire) ----------
  try {
    await until(
      async () => {
        const s = await api.get('/v1/status');
        return s.status === 200 && s.body.ready && s.body.listener.connected && s.body.inflight === 0;
      },
      options.leaseMs + 15_000,
      'the daemon ready, its listener connected and no booking in flight',
    );
  } catch (err) {
    v.add('5 settled', String(err instanceof Error ? err.message : err));
  }

  // ---- 5: exactly once ----------------------------------------------------------------------
  await checkSettlements(options, bookings, v, notes);

  // ---- recompute, then 1 and 2 ---------------------------------------------------------------
  await api.post('/v1/admin/refresh-shows');
  if (options.recompute !== false) {
    const r = await api.post('/v1/admin/recompute');
    if (r.status !== 200)
      v.add('1 counters', `POST /v1/admin/recompute answered ${r.status} ${JSON.stringify(r.body)}`);
  }
  await checkCounters(api, sql, multiplier, v, notes, options.recompute !== false);

  // ---- 3 and 4: the replay ----------------------------------------------------------------
  for (const report of options.reports) replay(report, options, v, notes);

  return { violations: v.list, notes };
}

async function checkSettlements(
  options: AuditOptions,
  bookings: BookingRecord[],
  v: Violations,
  notes: string[],
): Promise<void> {
  const { api } = options;
  const reports = options.reports;
  const unreadyBetween = (from: number, to: number) =>
    reports.some((r) => r.notReadyAt.some((t) => t >= from && t <= to + 1));

  let confirmed = 0;
  let rolledBack = 0;
  let expired = 0;
  let unknown = 0;
  const abandoned: BookingRecord[] = [];
  for (const b of bookings) {
    switch (b.settleAnswer) {
      case 'confirmed':
        confirmed++;
        break;
      case 'rolled_back':
        rolledBack++;
        break;
      case 'lease_expired':
        expired++;
        break;
      case 'unknown_booking':
        unknown++;
        if (!unreadyBetween(b.appliedAt, b.settledAt ?? b.appliedAt)) {
          v.add(
            '5 settled',
            `booking ${b.id} (${label('job', b.job)}, ${b.cores} cores) was applied, then its ${
              b.fate === 'confirmed' ? 'confirm' : 'rollback'
            } found it unknown though the daemon never failed closed in between: it was lost or ended twice`,
          );
        }
        break;
      case null:
        if (b.fate === 'abandoned') abandoned.push(b);
        else v.add('5 settled', `booking ${b.id} was never settled by the simulator (fate ${b.fate})`);
        break;
      default:
        abandoned.push(b); // transport error on settle: left to its lease
    }
  }

  // Abandoned bookings must have ended by lease expiry: a late confirm hears lease_expired.
  // The daemon remembers an expired id for one lease after it expired: probe those still
  // remembered, the most recent first (the tally below accounts for all of them).
  const remembered = abandoned
    .filter((b) => b.leaseExpiresAt + options.leaseMs > Date.now() + 500)
    .sort((a, b) => b.leaseExpiresAt - a.leaseExpiresAt)
    .slice(0, 200);
  for (const b of remembered) {
    if (b.leaseExpiresAt + options.leaseMs <= Date.now() + 100) break;
    const r = await api.post('/v1/confirm', { booking: b.id });
    if (r.status === 200) {
      v.add(
        '5 settled',
        `abandoned booking ${b.id} could still be confirmed after its lease: it never expired`,
      );
    } else if (r.body?.error === 'lease_expired') {
      // ended by expiry
    } else if (r.body?.error === 'unknown_booking' && unreadyBetween(b.appliedAt, Date.now())) {
      // the daemon failed closed since (restart): its in-memory bookings are gone by design
    } else {
      v.add(
        '5 settled',
        `abandoned booking ${b.id} (lease expired ${Date.now() - b.leaseExpiresAt} ms ago): a late confirm answered ${r.status} ${JSON.stringify(r.body)}, not lease_expired`,
      );
    }
  }
  // A settled booking cannot be settled again.
  const settled = bookings.filter((b) => b.settleAnswer === 'confirmed' || b.settleAnswer === 'rolled_back');
  const step = Math.max(1, Math.floor(settled.length / 100));
  for (let i = 0; i < settled.length; i += step) {
    const b = settled[i]!;
    const r = await api.post(b.settleAnswer === 'confirmed' ? '/v1/rollback' : '/v1/confirm', {
      booking: b.id,
    });
    if (r.status === 200)
      v.add('5 settled', `booking ${b.id} ended twice: ${b.settleAnswer}, then ${r.body?.result}`);
  }

  if (options.tallyBefore !== undefined) {
    const after = await daemonTally(api);
    const before = options.tallyBefore;
    const lost = reports.reduce((n, r) => n + r.counts.lostBookRequests, 0);
    const d = {
      applied: after.applied - before.applied,
      confirmed: after.confirmed - before.confirmed,
      rolledBack: after.rolledBack - before.rolledBack,
      leaseExpired: after.leaseExpired - before.leaseExpired,
    };
    const ended = d.confirmed + d.rolledBack + d.leaseExpired;
    if (after.inflight !== 0)
      v.add('5 settled', `${after.inflight} bookings still in flight after quiescence`);
    if (ended !== d.applied) {
      v.add(
        '5 settled',
        `the daemon applied ${d.applied} bookings but ended ${ended} (${d.confirmed} confirmed, ${d.rolledBack} rolled back, ${d.leaseExpired} expired)`,
      );
    }
    if (d.applied < bookings.length || d.applied > bookings.length + lost) {
      v.add(
        '5 settled',
        `the daemon counted ${d.applied} applied bookings, the simulator saw ${bookings.length} (${lost} requests lost)`,
      );
    }
    if (d.confirmed !== confirmed)
      v.add('5 settled', `the daemon counted ${d.confirmed} confirms, the simulator got ${confirmed}`);
    if (d.rolledBack !== rolledBack)
      v.add('5 settled', `the daemon counted ${d.rolledBack} rollbacks, the simulator got ${rolledBack}`);
    const expectExpired = abandoned.length + expired;
    if (d.leaseExpired < expectExpired || d.leaseExpired > expectExpired + lost) {
      v.add(
        '5 settled',
        `the daemon expired ${d.leaseExpired} leases, the simulator abandoned ${abandoned.length} and saw ${expired} expire`,
      );
    }
  }
  notes.push(
    `settlements: ${confirmed} confirmed, ${rolledBack} rolled back, ${abandoned.length} abandoned + ${expired} late → lease expiry (${remembered.length} probed)${
      unknown > 0 ? `, ${unknown} unknown after a fail-closed period` : ''
    }`,
  );
}

async function checkCounters(
  api: ApiClient,
  sql: Sql,
  multiplier: number,
  v: Violations,
  notes: string[],
  recomputed: boolean,
): Promise<void> {
  const [state, status, truth, managed] = await Promise.all([
    readState(api),
    api.get('/v1/status'),
    readTruth(sql, multiplier),
    managedShowIds(sql),
  ]);
  if (state.status !== 200) {
    v.add('1 counters', `GET /v1/state answered ${state.status}`);
    return;
  }
  const daemonManaged = new Set<string>((status.body.managed_shows as { id: string }[]).map((s) => s.id));
  for (const id of managed)
    if (!daemonManaged.has(id))
      v.add('1 counters', `show ${short(id)} is managed in the database but not published by the daemon`);
  for (const id of daemonManaged)
    if (!managed.has(id))
      v.add('1 counters', `show ${short(id)} is published by the daemon but not managed in the database`);

  const seen = new Set<string>();
  let compared = 0;
  for (const s of state.body.vertices as StateVertex[]) {
    const id = `${s.kind}:${s.key}`;
    seen.add(id);
    const t = truth.get(id);
    if (t === undefined) {
      if (s.cores !== 0 || s.gpus !== 0) {
        v.add(
          s.kind === 'job' ? '2 leak' : '1 counters',
          `${label(s.kind, s.key)} is not an enforced vertex of a managed show in the database but the daemon counts ${s.cores} cores / ${s.gpus} GPUs`,
        );
      }
      continue;
    }
    compared++;
    if (s.cores !== t.cores || s.gpus !== t.gpus) {
      if (s.kind === 'job' && t.cores === 0 && t.gpus === 0) {
        v.add(
          '2 leak',
          `${label(s.kind, s.key)} has no procs but the daemon counts ${s.cores} cores / ${s.gpus} GPUs`,
        );
      } else {
        v.add(
          '1 counters',
          `${label(s.kind, s.key)}: the daemon counts ${s.cores} cores / ${s.gpus} GPUs, SUM(proc) is ${t.cores} cores / ${t.gpus} GPUs`,
        );
      }
    }
    if (s.max_cores !== t.maxCores || (s.kind !== 'subscription' && s.max_gpus !== t.maxGpus)) {
      v.add(
        '1 counters',
        `${label(s.kind, s.key)}: the daemon enforces ${s.max_cores} cores / ${s.max_gpus} GPUs, the database says ${t.maxCores} / ${t.maxGpus}`,
      );
    }
  }
  for (const [id, t] of truth) {
    if (seen.has(id)) {
      if (t.tableCores !== t.cores || t.tableGpus !== t.gpus) {
        if (recomputed)
          v.add(
            '1 counters',
            `${label(t.kind, t.key)}: the PG accounting row holds ${t.tableCores} cores / ${t.tableGpus} GPUs after the recompute, SUM(proc) is ${t.cores} / ${t.gpus}`,
          );
      }
      continue;
    }
    if (t.cores !== 0 || t.gpus !== 0)
      v.add(
        '1 counters',
        `${label(t.kind, t.key)} has ${t.cores} cores / ${t.gpus} GPUs of procs but the daemon does not list it`,
      );
  }
  notes.push(
    `counters: ${compared} vertices compared with SUM(proc) ${recomputed ? 'after one recompute' : 'with no admin recompute'}`,
  );
}

// ---- the replay (checks 3 and 4) -----------------------------------------------------------

interface Usage {
  cores: number;
  gpus: number;
}

interface Event {
  t: number;
  /** Tie-break at equal times: releases (0) before unbookings (1) before bookings/rejections (2). */
  prio: number;
  worker: number;
  seq: number;
  /** Cores and GPUs taken (sign 1) or given back (-1) on the vertices of a booking. */
  apply?: BookingRequest & { sign: 1 | -1 };
  check?: BookingRecord;
  rejection?: SimulationReport['rejections'][number];
}

/** A vertex's cap values and when each may be in force at the daemon. */
class CapTimeline {
  private readonly windows = new Map<string, { value: number; from: number; to: number }[]>();

  constructor(report: SimulationReport, graceMs: number) {
    const changes = new Map<string, SimulationReport['capChanges']>();
    for (const c of report.capChanges) {
      const id = `${vertexId(c.vertex.kind, c.vertex.key)}|${c.field}`;
      const list = changes.get(id) ?? [];
      list.push(c);
      changes.set(id, list);
    }
    for (const [id, list] of changes) {
      const windows: { value: number; from: number; to: number }[] = [];
      let from = Number.NEGATIVE_INFINITY;
      let value = list[0]!.from;
      for (const c of list) {
        windows.push({ value, from, to: c.committedAt + graceMs });
        value = c.to;
        from = c.startedAt;
      }
      windows.push({ value, from, to: Number.POSITIVE_INFINITY });
      this.windows.set(id, windows);
    }
  }

  /** Every value of the cap that may have been in force during [from, to]. */
  values(id: string, field: 'max_cores' | 'max_gpus', initial: number, from: number, to: number): number[] {
    const windows = this.windows.get(`${id}|${field}`);
    if (windows === undefined) return [initial];
    return windows.filter((w) => w.from <= to && w.to >= from).map((w) => w.value);
  }
}

/** The most the daemon could have allowed: burst as is; folder/job caps <= 0 are unlimited. */
function loosest(kind: VertexKind, values: number[]): number {
  let best = Number.NEGATIVE_INFINITY;
  for (const value of values) {
    const allowed = kind !== 'subscription' && value <= 0 ? Number.POSITIVE_INFINITY : value;
    best = Math.max(best, allowed);
  }
  return best;
}

/** Checks 3 and 4 (and the rejection replay) over one report alone: no daemon, no database. */
export function replayReport(
  report: SimulationReport,
  options: Pick<AuditOptions, 'capDecreaseGraceMs' | 'checkRejections'> = {},
): AuditResult {
  const v = new Violations();
  const notes: string[] = [];
  replay(report, options, v, notes);
  return { violations: v.list, notes };
}

function replay(
  report: SimulationReport,
  options: Pick<AuditOptions, 'capDecreaseGraceMs' | 'checkRejections'>,
  v: Violations,
  notes: string[],
): void {
  const grace = options.capDecreaseGraceMs ?? 2_000;
  const caps = new CapTimeline(report, grace);
  const events: Event[] = [];
  for (const b of report.bookings) {
    const apply = {
      show: b.show,
      alloc: b.alloc,
      folder: b.folder,
      job: b.job,
      cores: b.cores,
      gpus: b.gpus,
    };
    if (b.settleAnswer === 'unknown_booking') continue; // lost by the daemon in a fail-closed period: counted by nobody
    events.push({
      t: b.appliedAt,
      prio: 2,
      worker: b.worker,
      seq: b.seq,
      apply: { ...apply, sign: 1 },
      check: b,
    });
    if (b.settleAnswer === 'rolled_back') {
      events.push({ t: b.settledAt!, prio: 1, worker: b.worker, seq: b.seq, apply: { ...apply, sign: -1 } });
    } else if (b.proc === null) {
      // No proc and not rolled back: the daemon may drop it from the lease expiry on.
      events.push({
        t: b.leaseExpiresAt,
        prio: 1,
        worker: b.worker,
        seq: b.seq,
        apply: { ...apply, sign: -1 },
      });
    }
  }
  for (const r of report.releases) {
    events.push({ t: r.startedAt, prio: 0, worker: -1, seq: 0, apply: { ...r, sign: -1 } });
  }
  if (options.checkRejections) {
    for (const r of report.rejections)
      events.push({ t: r.answeredAt, prio: 2, worker: r.worker, seq: r.seq, rejection: r });
  }
  events.sort((a, b) => a.t - b.t || a.prio - b.prio || a.worker - b.worker || a.seq - b.seq);

  const usage = new Map<string, Usage>();
  const get = (id: string): Usage => {
    let u = usage.get(id);
    if (u === undefined) {
      const initial = report.initial.usage[id];
      u = { cores: initial?.cores ?? 0, gpus: initial?.gpus ?? 0 };
      usage.set(id, u);
    }
    return u;
  };
  const capOf = (id: string): VertexCaps => report.initial.caps[id] ?? { maxCores: 0, maxGpus: -1 };
  let checked = 0;
  let peakShare = 0;

  for (const e of events) {
    if (e.apply !== undefined) {
      const a = e.apply;
      const ids = [
        vertexId('subscription', subscriptionKey(a.show, a.alloc)),
        vertexId('folder', a.folder),
        vertexId('job', a.job),
      ];
      for (const id of ids) {
        const u = get(id);
        u.cores += a.sign * a.cores;
        u.gpus += a.sign * a.gpus;
      }
      const b = e.check;
      if (b === undefined) continue;
      checked++;
      const at = (t: number) => `${((t - report.startedAt) / 1000).toFixed(3)} s`;
      for (const [kind, key] of [
        ['subscription', subscriptionKey(b.show, b.alloc)],
        ['folder', b.folder],
        ['job', b.job],
      ] as const) {
        const id = vertexId(kind, key);
        const u = get(id);
        const initial = capOf(id);
        if (b.cores > 0) {
          const cap = loosest(
            kind,
            caps.values(id, 'max_cores', initial.maxCores, b.requestedAt, b.appliedAt),
          );
          if (Number.isFinite(cap) && cap > 0) peakShare = Math.max(peakShare, u.cores / cap);
          if (u.cores > cap) {
            v.add(
              kind === 'subscription' ? '3 burst' : '4 caps',
              `${label(kind, key)}: booking ${b.id} (+${b.cores} cores) at ${at(b.appliedAt)} took booked cores to ${u.cores} > ${
                kind === 'subscription' ? 'burst' : 'max cores'
              } ${cap}`,
            );
          }
        }
        if (b.gpus > 0 && kind !== 'subscription') {
          const cap = loosest(kind, caps.values(id, 'max_gpus', initial.maxGpus, b.requestedAt, b.appliedAt));
          if (u.gpus > cap) {
            v.add(
              '4 caps',
              `${label(kind, key)}: booking ${b.id} (+${b.gpus} GPUs) at ${at(b.appliedAt)} took booked GPUs to ${u.gpus} > max GPUs ${cap}`,
            );
          }
        }
      }
    } else if (e.rejection !== undefined) {
      checkRejection(e.rejection, get, capOf, v);
    }
  }
  notes.push(
    `replay: ${checked} applied bookings checked against burst and caps (peak ${(peakShare * 100).toFixed(0)}% of a core cap), ${report.releases.length} releases, ${report.capChanges.length} cap changes${
      options.checkRejections ? `, ${report.rejections.length} rejections replayed` : ''
    }`,
  );
}

/** Order of the checks in Store.book: cores (subscription, folder, job), then GPUs (folder, job). */
const ORDER: { table: LimitTable; kind: VertexKind; field: 'cores' | 'gpus' }[] = [
  { table: 'subscription', kind: 'subscription', field: 'cores' },
  { table: 'folder', kind: 'folder', field: 'cores' },
  { table: 'job', kind: 'job', field: 'cores' },
  { table: 'folder_gpus', kind: 'folder', field: 'gpus' },
  { table: 'job_gpus', kind: 'job', field: 'gpus' },
];

function checkRejection(
  r: SimulationReport['rejections'][number],
  get: (id: string) => Usage,
  capOf: (id: string) => VertexCaps,
  v: Violations,
): void {
  const keyOf = (kind: VertexKind) =>
    kind === 'subscription' ? subscriptionKey(r.show, r.alloc) : kind === 'folder' ? r.folder : r.job;
  // What the replay says the daemon should have answered.
  let expected: { table: LimitTable; current: number; limit: number } | undefined;
  for (const step of ORDER) {
    const amount = step.field === 'cores' ? r.cores : r.gpus;
    if (amount <= 0) continue;
    const id = vertexId(step.kind, keyOf(step.kind));
    const cap = capOf(id);
    const limit = step.field === 'cores' ? cap.maxCores : cap.maxGpus;
    const current = step.field === 'cores' ? get(id).cores : get(id).gpus;
    const enforced = step.kind === 'subscription' || limit > 0;
    if (enforced && current + amount > limit) {
      expected = { table: step.table, current, limit };
      break;
    }
  }
  const got = `${r.table} (current ${r.current}, limit ${r.limit})`;
  if (expected === undefined) {
    v.add(
      'rejections',
      `booking of ${r.cores} cores / ${r.gpus} GPUs on ${label('job', r.job)} was rejected by ${got}, but every cap had room in the replay`,
    );
  } else if (expected.table !== r.table || expected.current !== r.current || expected.limit !== r.limit) {
    v.add(
      'rejections',
      `booking of ${r.cores} cores / ${r.gpus} GPUs on ${label('job', r.job)} was rejected by ${got}; the replay says ${expected.table} (current ${expected.current}, limit ${expected.limit})`,
    );
  }
}
