/**
 * `cueacct recompute`: the audit of the accounting state against `SUM(proc)`, and its repair.
 *
 * Two comparisons, read so that each is consistent:
 * - PG tables: the five accounting tables (subscription, folder_resource, job_resource,
 *   layer_resource, point) against `SUM(proc)`, all in one REPEATABLE READ snapshot, using the
 *   rewrite's own expected-value SQL (db/audit-queries.ts). Units: centicores, reported as cores.
 * - Daemon: its live store (GET /v1/state) against the booked sums the daemon itself would
 *   load (`bookedRows` + `capRows` + `buildSnapshot`, same snapshot), in whole cores. The
 *   store may legitimately be above `SUM(proc)` by its carried part (in-flight bookings and
 *   confirms the last snapshot may not have seen), so a vertex drifts only when
 *   `SUM(proc)` is outside `[live - carried, live]`. The state is read once before and once
 *   after the database snapshot and the window spans both reads, so a booking or release
 *   that lands while the audit runs is not mistaken for drift.
 *
 * "Display lag": for a scheduler-managed show the PG tables are display copies that the
 * daemon rewrites at every recompute pass, so on a busy farm they trail `SUM(proc)` by up to
 * one interval. When a daemon answers, publishes the show and its last recompute did not fail,
 * such differences are reported as lag and do not count as drift (`--strict` counts them).
 */
import { performance } from 'node:perf_hooks';

import type { Sql } from 'postgres';

import type { StateResponse, StatusResponse, VertexState } from '../api/types.js';
import type { DaemonClient } from '../cli/daemon-client.js';
import { CliError } from '../cli/errors.js';
import { ExitCode } from '../cli/exit-codes.js';
import { buildSnapshot } from '../core/boundary.js';
import {
  auditAccountingTables,
  scopedShows,
  type ScopedShow,
  type TableDriftRow,
} from '../db/audit-queries.js';
import { bookedRows, capRows } from '../db/queries.js';
import {
  rewriteAccountingTables,
  type AccountingTable,
  type RewriteReport,
  type RewriteScope,
  type TargetScope,
} from '../db/rewrite.js';
import { round3 } from './format.js';

export type AuditScope = { kind: 'managed' } | { kind: 'all' } | { kind: 'show'; show: ScopedShow };

/** The vertex an entry is about: the three enforced ones, plus the two display-only tables. */
export type AuditVertex = 'subscription' | 'folder' | 'job' | 'layer' | 'point';

const VERTEX_OF_TABLE: Record<AccountingTable, AuditVertex> = {
  subscription: 'subscription',
  folder_resource: 'folder',
  job_resource: 'job',
  layer_resource: 'layer',
  point: 'point',
};

export interface Amount {
  /** Cores (PG values divided by the multiplier: may be fractional for PG tables). */
  cores: number;
  gpus: number;
}

export interface DaemonAmount extends Amount {
  /** In-flight plus settled-not-yet-snapshotted: what the store may carry above SUM(proc). */
  carried_cores: number;
  carried_gpus: number;
}

export interface DriftEntry {
  vertex: AuditVertex;
  /** `show/alloc` (subscription), folder id, job id, layer id, `show/dept` (point). */
  key: string;
  show: string;
  show_name: string | null;
  /** Whether the show is scheduler-managed in the database. */
  managed: boolean;
  /** Alloc, folder, job or department name; for a layer the name of its job. */
  name: string | null;
  /** From SUM(proc). */
  expected: Amount;
  /** The table's value when it differs from `expected`; null when it agrees (or was not read). */
  pg: Amount | null;
  /** The daemon's live counter (last read) when the daemon was compared for this vertex. */
  daemon: DaemonAmount | null;
  /** `pg - expected`, or null when the table agrees. */
  pg_drift: Amount | null;
  /** How far SUM(proc) is outside the daemon's allowed window (live above: positive), or null. */
  daemon_drift: Amount | null;
  /** False for display lag of a managed show (see the module comment). */
  counted: boolean;
}

export type DaemonComparison = 'compared' | 'unreachable' | 'skipped' | 'not_ready';

export interface AuditResult {
  /** No counted drift and no problem. */
  ok: boolean;
  dry_run: boolean;
  scope: { kind: AuditScope['kind']; shows: { id: string; name: string; managed: boolean }[] };
  multiplier: number;
  checked: { tables: Record<AccountingTable, number>; daemon_vertices: number };
  daemon: {
    url: string | null;
    comparison: DaemonComparison;
    error: string | null;
    last_recompute_ok: boolean | null;
  };
  /** Counted drift, largest first. */
  drift: DriftEntry[];
  /** Display lag of managed shows (not counted unless --strict), largest first. */
  lag: DriftEntry[];
  /** Findings that are not a number off: a show the daemon has not published, a failed pass, … */
  problems: string[];
  repair: AuditRepair | null;
  duration_ms: number;
}

export interface AuditRepair {
  /** Rows rewritten per table (null when nothing in scope is scheduler-managed). */
  rewritten: RewriteReport | null;
  daemon_recompute: 'done' | 'skipped' | 'failed';
  daemon_error: string | null;
  /** Counted drift entries and problems found by a second audit right after the repair. */
  remaining: number;
}

export interface AuditOptions {
  scope: AuditScope;
  multiplier: number;
  /** The daemon to compare with; undefined: do not contact one. */
  daemon?: DaemonClient;
  /** Unreachable daemon: an error (exit 3) when true, else the comparison is skipped. */
  daemonRequired: boolean;
  /** Count display lag as drift. */
  strict: boolean;
  dryRun: boolean;
}

interface DaemonRead {
  status: StatusResponse;
  before: StateResponse;
}

/** Run the audit (reads only). */
export async function runAudit(sql: Sql, options: AuditOptions): Promise<AuditResult> {
  const started = performance.now();
  const problems: string[] = [];
  const daemonInfo: AuditResult['daemon'] = {
    url: options.daemon?.describe ?? null,
    comparison: options.daemon === undefined ? 'skipped' : 'compared',
    error: null,
    last_recompute_ok: null,
  };
  const stateQuery = options.scope.kind === 'show' ? { show: options.scope.show.id } : {};

  let daemonRead: DaemonRead | undefined;
  if (options.daemon !== undefined) {
    try {
      const status = (await options.daemon.status()) as unknown as StatusResponse;
      daemonInfo.last_recompute_ok = status.last_recompute?.ok ?? null;
      if (status.ready === false) {
        daemonInfo.comparison = 'not_ready';
        problems.push(
          `the daemon at ${options.daemon.describe} is not ready (bootstrap not done, or lock lost)`,
        );
      } else {
        const before = await options.daemon.stateAll(stateQuery);
        daemonRead = { status, before };
      }
    } catch (error) {
      if (!isUnreachable(error) || options.daemonRequired) throw error;
      daemonInfo.comparison = 'unreachable';
      daemonInfo.error = (error as Error).message;
    }
  }
  const published = new Set(daemonRead?.status.managed_shows.map((show) => show.id) ?? []);

  const read = (await sql.begin('isolation level repeatable read read only', async (tx) => {
    const q = tx as unknown as Sql;
    const shows =
      options.scope.kind === 'show' ? [options.scope.show] : await scopedShows(q, options.scope.kind);
    const tables = await auditAccountingTables(q, targetScope(options.scope));
    const compared = daemonRead === undefined ? [] : shows.filter((s) => s.managed && published.has(s.id));
    const ids = compared.map((show) => show.id);
    const caps = await capRows(q, ids);
    const booked = await bookedRows(q, ids);
    return { shows, tables, compared, caps, booked };
  })) as {
    shows: ScopedShow[];
    tables: Awaited<ReturnType<typeof auditAccountingTables>>;
    compared: ScopedShow[];
    caps: Awaited<ReturnType<typeof capRows>>;
    booked: Awaited<ReturnType<typeof bookedRows>>;
  };

  const after = daemonRead === undefined ? undefined : await options.daemon!.stateAll(stateQuery);

  const showNames = new Map(read.shows.map((show) => [show.id, show]));
  const entries = new Map<string, DriftEntry>();
  const entry = (vertex: AuditVertex, key: string, seed: () => DriftEntry): DriftEntry => {
    const id = `${vertex}\u0000${key}`;
    let found = entries.get(id);
    if (found === undefined) {
      found = seed();
      entries.set(id, found);
    }
    return found;
  };

  // PG tables.
  for (const row of read.tables.rows) {
    const expected = amount(row.expectedCores, row.expectedGpus, options.multiplier);
    const pg = amount(row.tableCores, row.tableGpus, options.multiplier);
    const e = entry(VERTEX_OF_TABLE[row.table], row.key, () => fromTableRow(row, expected));
    e.pg = pg;
    e.pg_drift = { cores: round3(pg.cores - expected.cores), gpus: pg.gpus - expected.gpus };
  }

  // Daemon store.
  let daemonVertices = 0;
  if (daemonRead !== undefined && after !== undefined) {
    daemonInfo.comparison = 'compared';
    const comparedIds = new Set(read.compared.map((show) => show.id));
    const snapshot = buildSnapshot(read.booked, read.caps, options.multiplier);
    const expected = new Map<string, Amount>();
    for (const s of snapshot.subscriptions)
      expected.set(`subscription\u0000${s.show}/${s.alloc}`, { cores: s.cores, gpus: s.gpus });
    for (const f of snapshot.folders) expected.set(`folder\u0000${f.id}`, { cores: f.cores, gpus: f.gpus });
    for (const j of snapshot.jobs) expected.set(`job\u0000${j.id}`, { cores: j.cores, gpus: j.gpus });
    const first = indexState(daemonRead.before, comparedIds);
    const second = indexState(after, comparedIds);
    const keys = new Set([...expected.keys(), ...first.keys(), ...second.keys()]);
    daemonVertices = second.size;
    for (const id of keys) {
      const want = expected.get(id) ?? { cores: 0, gpus: 0 };
      const a = first.get(id);
      const b = second.get(id);
      const drift = {
        cores: outside(want.cores, [a, b], 'cores'),
        gpus: outside(want.gpus, [a, b], 'gpus'),
      };
      if (drift.cores === 0 && drift.gpus === 0) continue;
      const last = b ?? a;
      const [kind, key] = id.split('\u0000') as [AuditVertex, string];
      const e = entry(kind, key, () => fromState(kind, key, last, want, showNames));
      e.daemon = last === undefined ? zeroDaemon() : daemonAmount(last);
      e.daemon_drift = drift;
    }
    // Fill the daemon's value on PG rows of compared vertices, for context.
    for (const e of entries.values()) {
      if (e.daemon !== null) continue;
      const last = second.get(`${e.vertex}\u0000${e.key}`);
      if (last !== undefined) e.daemon = daemonAmount(last);
    }
    problems.push(...publicationProblems(read.shows, daemonRead.status, options.scope));
    const lastRecompute = daemonRead.status.last_recompute;
    if (lastRecompute?.ok === false) {
      problems.push(
        `the daemon's last recompute failed${lastRecompute.at ? ` at ${lastRecompute.at}` : ''}: ${lastRecompute.error ?? 'unknown error'}`,
      );
    }
  }

  // Lag or drift.
  const lagAllowed = (e: DriftEntry) =>
    !options.strict &&
    e.daemon_drift === null &&
    e.managed &&
    daemonRead !== undefined &&
    published.has(e.show) &&
    daemonRead.status.last_recompute?.ok !== false;
  const drift: DriftEntry[] = [];
  const lag: DriftEntry[] = [];
  for (const e of entries.values()) {
    e.counted = !lagAllowed(e);
    (e.counted ? drift : lag).push(e);
  }
  drift.sort(bySize);
  lag.sort(bySize);

  return {
    ok: drift.length === 0 && problems.length === 0,
    dry_run: options.dryRun,
    scope: {
      kind: options.scope.kind,
      shows: read.shows.map((show) => ({ id: show.id, name: show.name, managed: show.managed })),
    },
    multiplier: options.multiplier,
    checked: { tables: read.tables.checked, daemon_vertices: daemonVertices },
    daemon: daemonInfo,
    drift,
    lag,
    problems,
    repair: null,
    duration_ms: round3(performance.now() - started),
  };
}

/**
 * The repair of a non-dry run: rewrite the PG tables of the managed shows in scope (the
 * daemon's own PG-side recompute) and ask the daemon to recompute now, then audit again.
 */
export async function repairAndRecheck(
  sql: Sql,
  options: AuditOptions,
  found: AuditResult,
): Promise<AuditResult> {
  const scope = rewriteScope(options.scope);
  const rewritten = scope === null ? null : await rewriteAccountingTables(sql, scope);
  let daemonRecompute: AuditRepair['daemon_recompute'] = 'skipped';
  let daemonError: string | null = null;
  if (options.daemon !== undefined && found.daemon.comparison === 'compared') {
    try {
      await options.daemon.admin('recompute');
      daemonRecompute = 'done';
    } catch (error) {
      if (isUnreachable(error) && !options.daemonRequired) {
        daemonRecompute = 'skipped';
      } else {
        daemonRecompute = 'failed';
        daemonError = error instanceof Error ? error.message : String(error);
      }
    }
  }
  const again = await runAudit(sql, { ...options, dryRun: true });
  const problems = [...found.problems];
  if (daemonError !== null) problems.push(`asking the daemon to recompute failed: ${daemonError}`);
  return {
    ...found,
    ok: found.drift.length === 0 && problems.length === 0,
    problems,
    repair: {
      rewritten,
      daemon_recompute: daemonRecompute,
      daemon_error: daemonError,
      remaining: again.drift.length + again.problems.length,
    },
  };
}

function targetScope(scope: AuditScope): TargetScope {
  return scope.kind === 'show' ? { kind: 'show', show: scope.show.id } : { kind: scope.kind };
}

/** Rewrites only ever touch scheduler-managed shows. */
function rewriteScope(scope: AuditScope): RewriteScope | null {
  if (scope.kind !== 'show') return { kind: 'managed' };
  return scope.show.managed ? { kind: 'show', show: scope.show.id } : null;
}

function isUnreachable(error: unknown): boolean {
  return error instanceof CliError && error.exitCode === ExitCode.UNREACHABLE;
}

function amount(cores: string, gpus: string, multiplier: number): Amount {
  return { cores: round3(Number(cores) / multiplier), gpus: Number(gpus) };
}

/** A finding before either side is compared: the comparisons fill in pg/daemon. */
function entry(
  identity: Pick<DriftEntry, 'vertex' | 'key' | 'show' | 'show_name' | 'managed' | 'name'>,
  expected: Amount,
): DriftEntry {
  return { ...identity, expected, pg: null, daemon: null, pg_drift: null, daemon_drift: null, counted: true };
}

function fromTableRow(row: TableDriftRow, expected: Amount): DriftEntry {
  return entry(
    {
      vertex: VERTEX_OF_TABLE[row.table],
      key: row.key,
      show: row.show,
      show_name: row.showName,
      managed: row.managed,
      name: row.name,
    },
    expected,
  );
}

function fromState(
  kind: AuditVertex,
  key: string,
  state: VertexState | undefined,
  expected: Amount,
  shows: Map<string, ScopedShow>,
): DriftEntry {
  const show = state?.show ?? (kind === 'subscription' ? key.split('/')[0]! : '');
  return entry(
    {
      vertex: kind,
      key,
      show,
      show_name: shows.get(show)?.name ?? state?.show_name ?? null,
      managed: shows.get(show)?.managed ?? true,
      name: state?.name ?? null,
    },
    expected,
  );
}

/** Daemon vertices of the compared shows, by `kind\0key`. */
function indexState(state: StateResponse, shows: ReadonlySet<string>): Map<string, VertexState> {
  const index = new Map<string, VertexState>();
  for (const vertex of state.vertices) {
    if (vertex.show === null || !shows.has(vertex.show)) continue;
    index.set(`${vertex.kind}\u0000${vertex.key}`, vertex);
  }
  return index;
}

function carried(vertex: VertexState, field: 'cores' | 'gpus'): number {
  return field === 'cores'
    ? vertex.inflight_cores + vertex.settled_cores
    : vertex.inflight_gpus + vertex.settled_gpus;
}

/**
 * 0 when `expected` is within the window the reads allow, `[min(live - carried), max(live)]`
 * (a vertex missing from a read counts as 0 there); else the signed distance to the window.
 */
function outside(expected: number, reads: (VertexState | undefined)[], field: 'cores' | 'gpus'): number {
  let low = Number.POSITIVE_INFINITY;
  let high = Number.NEGATIVE_INFINITY;
  for (const read of reads) {
    const live = read === undefined ? 0 : read[field];
    const base = read === undefined ? 0 : live - carried(read, field);
    low = Math.min(low, base);
    high = Math.max(high, live);
  }
  if (expected < low) return low - expected;
  if (expected > high) return high - expected;
  return 0;
}

function daemonAmount(vertex: VertexState): DaemonAmount {
  return {
    cores: vertex.cores,
    gpus: vertex.gpus,
    carried_cores: carried(vertex, 'cores'),
    carried_gpus: carried(vertex, 'gpus'),
  };
}

function zeroDaemon(): DaemonAmount {
  return { cores: 0, gpus: 0, carried_cores: 0, carried_gpus: 0 };
}

/** Shows the daemon should publish and does not, or publishes and should not. */
function publicationProblems(shows: ScopedShow[], status: StatusResponse, scope: AuditScope): string[] {
  const problems: string[] = [];
  const published = new Map(status.managed_shows.map((show) => [show.id, show.name]));
  const deferred = new Map((status.deferred_shows ?? []).map((show) => [show.id, show.error]));
  const known = new Map(shows.map((show) => [show.id, show]));
  for (const show of shows) {
    if (show.managed && !published.has(show.id)) {
      const why = deferred.get(show.id);
      problems.push(
        `show ${show.name} is scheduler-managed in the database but the daemon has not published it` +
          (why === undefined ? '' : ` (its seed is deferred: ${why})`),
      );
    }
  }
  for (const [id, name] of published) {
    const show = known.get(id);
    const inScope = scope.kind !== 'show' || scope.show.id === id;
    if (inScope && (show === undefined ? scope.kind !== 'all' && scope.kind !== 'show' : !show.managed)) {
      problems.push(
        `the daemon still enforces show ${name ?? id}, which the database no longer marks scheduler-managed`,
      );
    }
  }
  return problems;
}

function size(e: DriftEntry): [number, number] {
  const cores = Math.max(Math.abs(e.pg_drift?.cores ?? 0), Math.abs(e.daemon_drift?.cores ?? 0));
  const gpus = Math.max(Math.abs(e.pg_drift?.gpus ?? 0), Math.abs(e.daemon_drift?.gpus ?? 0));
  return [cores, gpus];
}

function bySize(a: DriftEntry, b: DriftEntry): number {
  const [ac, ag] = size(a);
  const [bc, bg] = size(b);
  return bc - ac || bg - ag || labelOf(a).localeCompare(labelOf(b));
}

export function labelOf(e: DriftEntry): string {
  return `${e.show_name ?? e.show}/${e.vertex}/${e.name ?? e.key}`;
}
