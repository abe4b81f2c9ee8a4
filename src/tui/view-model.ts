/**
 * The view model of `cueacct inspect` (SPEC §3): what one frame shows, computed from the
 * daemon's `GET /v1/status` + `GET /v1/state` answers. Pure: no React, no Ink, no I/O and no
 * clock (the caller passes `now` and the time since the previous frame).
 *
 * Conventions (SPEC §1 "Cap conventions"):
 * - subscription burst `<= 0` is **closed**: every booking is rejected, so the row is at its
 *   cap ("closed", severity `full`; `over` only when something is still booked on it);
 * - folder/job caps `<= 0` are **unlimited** (`cap: null`, shown as "∞", no utilization);
 * - folder/job rows with a GPU cap use the larger of the core and GPU utilizations (the cap a
 *   booking runs into first).
 */
import type { StateResponse, StatusResponse, VertexDetailResponse, VertexState } from '../api/types.js';
import type { Drift, VertexKind } from '../core/types.js';

export type { VertexKind };

/** What the TUI polls: one status and one state answer, fetched together. */
export interface Snapshot {
  status: StatusResponse;
  state: StateResponse;
  /** The open detail pane's vertex (`GET /v1/vertex`), when one is open and still known. */
  detail?: VertexDetailResponse | null;
}

/**
 * The view the user currently looks at, passed to every fetch so the data source MAY narrow
 * its request (`GET /v1/state?vertex=…`). The TUI filters and sorts locally anyway, so a source
 * that ignores it (or a zero-argument function) is fine.
 */
export interface SnapshotQuery {
  vertex: VertexKind;
  sort: SortOrder;
  /** The applied show filter (substring of a show id or name), if any. */
  show?: string;
  /** The vertex whose detail pane is open: the source fetches `GET /v1/vertex` for it. */
  detail?: { kind: VertexKind; key: string };
}

export type FetchSnapshot = (query: SnapshotQuery) => Promise<Snapshot>;

/** `blocked`: most refused first (refusals/s over the last minute, then in total). */
export type SortOrder = 'utilization' | 'name' | 'blocked';
export const SORT_ORDERS: readonly SortOrder[] = ['utilization', 'name', 'blocked'];

/**
 * `ok` below 90 %, `warn` from 90 %, `full` exactly at the cap (the next core is refused; a
 * closed subscription with nothing booked), `over` above it (only after a cap decrease).
 */
export type Severity = 'ok' | 'warn' | 'full' | 'over';
/** Utilization from which a row is `warn`: 90 %. */
export const WARN_RATIO = 0.9;

export type BarStyle = 'unicode' | 'ascii';
export const DEFAULT_BAR_WIDTH = 20;

const BAR_GLYPHS: Record<BarStyle, { full: string; empty: string; unlimited: string; closed: string }> = {
  unicode: { full: '█', empty: '░', unlimited: '·', closed: '×' },
  ascii: { full: '#', empty: '-', unlimited: '.', closed: 'x' },
};

export const UNLIMITED_TEXT = '∞';
export const CLOSED_TEXT = 'closed';
/** Shown for a value that cannot be computed yet (no previous frame, unlimited utilization, …). */
export const NO_VALUE = '—';

export interface RowModel {
  kind: VertexKind;
  /** Folder/job id; `show/alloc` for a subscription. */
  key: string;
  /** `name` when the daemon knows it, else the key. */
  name: string;
  /** Show name when known, else the show id, else "—". */
  show: string;
  showId: string | null;
  /** Live booked cores (in-flight included). */
  cores: number;
  /** Core cap in whole cores; `null` = unlimited; `0` for a closed subscription. */
  coreCap: number | null;
  gpus: number;
  /** GPU cap; `null` = unlimited (always for subscriptions: GPUs are not enforced there). */
  gpuCap: number | null;
  /** Subscription with burst <= 0: rejects every booking. */
  closed: boolean;
  inflightCores: number;
  inflightGpus: number;
  /** Booked / cap of the binding cap (max of cores and GPUs); `null` when unlimited or closed. */
  utilization: number | null;
  severity: Severity;
  /** "120/200", "12/∞", "0/0" (closed), plus " 2/4g" when GPUs matter. */
  bookedText: string;
  /** "95.0%", "∞" (unlimited) or "closed". */
  utilizationText: string;
  /** Fixed-width bar (see {@link utilizationBar}). */
  bar: string;
  /** In-flight cores (and GPUs): "4", "4+1g", or "" when nothing is in flight. */
  inflightText: string;
  /** Refusals by this vertex's caps since the daemon started (0 from a daemon without them). */
  refusals: number;
  /** Refusals per second over the last minute / five minutes. */
  refusalsPerSec: number;
  refusalsPerSec5m: number;
  /** "2.5/s" while refusing, "0/s" when it refused in the last five minutes, else "". */
  refusalsText: string;
}

export interface Rates {
  /** Applied bookings per second since the previous frame; `null` on the first frame or after a counter reset. */
  bookingsPerSec: number | null;
  /** Rejected (`limit_exceeded`) bookings per second since the previous frame. */
  rejectionsPerSec: number | null;
}

export interface RecomputeSummary {
  /** Milliseconds since the last recompute finished; `null` if none ran yet. */
  ageMs: number | null;
  durationMs: number | null;
  ok: boolean | null;
  error: string | null;
  /** Drift summed over the three vertex kinds; `null` if unknown. */
  drift: Drift | null;
  /** `over` if the last pass failed, `warn` if it measured drift, else `ok`. */
  severity: Severity;
  /** "recompute 4s ago in 120 ms · drift none", "recompute never", "recompute FAILED 4s ago: …". */
  text: string;
}

export interface HeaderModel {
  version: string;
  uptimeText: string;
  ready: boolean;
  lockHeld: boolean;
  /** The lock state machine's state (`serving`, `fenced`, …); null from a service without the lock. */
  lockState: string | null;
  listenerConnected: boolean;
  listenerReconnects: number;
  droppedNotifications: number;
  epoch: number;
  inflight: number;
  managedShows: number;
  deferredShows: number;
  bookingsApplied: number;
  bookingsRejected: number;
  rates: Rates;
  bookingsRateText: string;
  rejectionsRateText: string;
  recompute: RecomputeSummary;
}

export interface ViewOptions {
  vertex: VertexKind;
  sort: SortOrder;
  /** Show filter: case-insensitive substring of the show id or name; empty = all. */
  show?: string;
  /** Wall clock (ms since the epoch) used for ages. */
  now: number;
  /** The status of the previous frame and the time elapsed since it, for the per-second rates. */
  previous?: { status: StatusResponse; elapsedMs: number } | null;
  /** Keep at most this many rows (after sorting); default: all. */
  maxRows?: number;
  barWidth?: number;
  barStyle?: BarStyle;
}

export interface ViewModel {
  header: HeaderModel;
  vertex: VertexKind;
  sort: SortOrder;
  /** The applied show filter, trimmed ('' = none). */
  filter: string;
  /** Visible rows, sorted, at most `maxRows`. */
  rows: RowModel[];
  /** Rows of this kind that pass the filter (visible + hidden). */
  matched: number;
  /** Rows of this kind in the state answer, before the filter. */
  ofKind: number;
  /** Matched rows cut by `maxRows`. */
  hidden: number;
  /** The daemon cut its answer (`total` > rows returned): the list may be incomplete. */
  daemonTruncated: boolean;
  /** Vertex counts of the whole store (status `counts`). */
  counts: Record<VertexKind, number>;
}

// ---------------------------------------------------------------------------------------------
// Rows

/** Core cap of a vertex as the store enforces it: `null` unlimited, `0` closed (subscriptions). */
export function coreCapOf(v: Pick<VertexState, 'kind' | 'max_cores'>): number | null {
  if (v.kind === 'subscription') return v.max_cores > 0 ? v.max_cores : 0;
  return v.max_cores > 0 ? v.max_cores : null;
}

/** GPU cap of a vertex: `null` = unlimited (subscriptions never enforce GPUs). */
export function gpuCapOf(v: Pick<VertexState, 'kind' | 'max_gpus'>): number | null {
  if (v.kind === 'subscription') return null;
  return v.max_gpus > 0 ? v.max_gpus : null;
}

/** Severity of `used` against an enforced `cap > 0`, in integers (no float edge cases). */
export function severityOf(used: number, cap: number): Severity {
  if (used > cap) return 'over';
  if (used === cap) return 'full';
  if (used * 10 >= cap * 9) return 'warn';
  return 'ok';
}

const SEVERITY_RANK: Record<Severity, number> = { ok: 0, warn: 1, full: 2, over: 3 };

export function worstSeverity(a: Severity, b: Severity): Severity {
  return SEVERITY_RANK[a] >= SEVERITY_RANK[b] ? a : b;
}

/** "95.0%" below 1000 %, whole percent above; `null` → "∞". */
export function formatUtilization(utilization: number | null, closed = false): string {
  if (closed) return CLOSED_TEXT;
  if (utilization === null) return UNLIMITED_TEXT;
  const pct = utilization * 100;
  return pct < 1000 ? `${pct.toFixed(1)}%` : `${Math.round(pct)}%`;
}

/**
 * A bar of exactly `width` characters. Filled in proportion to the utilization (clamped to the
 * cap): a non-zero utilization shows at least one cell and only a row at/over its cap is full.
 * Unlimited rows get a dotted track, closed subscriptions a crossed one.
 */
export function utilizationBar(
  utilization: number | null,
  width: number,
  options: { closed?: boolean; style?: BarStyle } = {},
): string {
  const w = Math.max(0, Math.floor(width));
  const glyphs = BAR_GLYPHS[options.style ?? 'unicode'];
  if (options.closed) return glyphs.closed.repeat(w);
  if (utilization === null) return glyphs.unlimited.repeat(w);
  let filled: number;
  if (utilization >= 1) filled = w;
  else if (utilization <= 0 || Number.isNaN(utilization)) filled = 0;
  else filled = Math.min(w - 1, Math.max(1, Math.round(utilization * w)));
  filled = Math.max(0, filled);
  return glyphs.full.repeat(filled) + glyphs.empty.repeat(w - filled);
}

export interface RowOptions {
  barWidth?: number;
  barStyle?: BarStyle;
  /** Show id → name, used when the vertex carries no `show_name` (e.g. status `managed_shows`). */
  showNames?: ReadonlyMap<string, string>;
}

export function buildRow(v: VertexState, options: RowOptions = {}): RowModel {
  const coreCap = coreCapOf(v);
  const gpuCap = gpuCapOf(v);
  const closed = v.kind === 'subscription' && coreCap === 0;

  let utilization: number | null = null;
  let severity: Severity = 'ok';
  if (closed) {
    // Burst 0 with nothing booked is exactly at its cap; anything booked is above it.
    severity = v.cores > 0 ? 'over' : 'full';
  } else {
    if (coreCap !== null) {
      utilization = v.cores / coreCap;
      severity = severityOf(v.cores, coreCap);
    }
    if (gpuCap !== null) {
      const gpuUtil = v.gpus / gpuCap;
      utilization = utilization === null ? gpuUtil : Math.max(utilization, gpuUtil);
      severity = worstSeverity(severity, severityOf(v.gpus, gpuCap));
    }
  }

  const showGpus = v.kind !== 'subscription' && (gpuCap !== null || v.gpus !== 0);
  const bookedText =
    `${v.cores}/${closed ? 0 : (coreCap ?? UNLIMITED_TEXT)}` +
    (showGpus ? ` ${v.gpus}/${gpuCap ?? UNLIMITED_TEXT}g` : '');
  const inflightText =
    v.inflight_cores === 0 && v.inflight_gpus === 0
      ? ''
      : `${v.inflight_cores}${v.inflight_gpus !== 0 ? `+${v.inflight_gpus}g` : ''}`;
  const showId = v.show;
  const show =
    nonEmpty(v.show_name) ?? (showId !== null ? options.showNames?.get(showId) : undefined) ?? showId;

  return {
    kind: v.kind,
    key: v.key,
    name: nonEmpty(v.name) ?? v.key,
    show: nonEmpty(show) ?? NO_VALUE,
    showId,
    cores: v.cores,
    coreCap,
    gpus: v.gpus,
    gpuCap,
    closed,
    inflightCores: v.inflight_cores,
    inflightGpus: v.inflight_gpus,
    utilization,
    severity,
    bookedText,
    utilizationText: formatUtilization(utilization, closed),
    bar: utilizationBar(utilization, options.barWidth ?? DEFAULT_BAR_WIDTH, {
      closed,
      ...(options.barStyle ? { style: options.barStyle } : {}),
    }),
    inflightText,
    ...refusalFields(v),
  };
}

function refusalFields(
  v: VertexState,
): Pick<RowModel, 'refusals' | 'refusalsPerSec' | 'refusalsPerSec5m' | 'refusalsText'> {
  const r = v.refusals;
  const perSec = r?.per_s_1m ?? 0;
  const perSec5m = r?.per_s_5m ?? 0;
  return {
    refusals: r?.total ?? 0,
    refusalsPerSec: perSec,
    refusalsPerSec5m: perSec5m,
    refusalsText: perSec > 0 ? formatRate(perSec) : perSec5m > 0 ? '0/s' : '',
  };
}

/**
 * Sort key for "fullest first": closed subscriptions count as at their cap (or beyond it when
 * something is still booked); unlimited rows sort after every capped row.
 */
function utilizationKey(row: RowModel): number {
  if (row.closed) return row.cores > 0 ? Number.POSITIVE_INFINITY : 1;
  return row.utilization ?? Number.NEGATIVE_INFINITY;
}

function compareNames(a: RowModel, b: RowModel): number {
  const an = a.name.toLowerCase();
  const bn = b.name.toLowerCase();
  if (an !== bn) return an < bn ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** A new array: by utilization (descending, unlimited last, ties by name) or by name. */
export function sortRows(rows: readonly RowModel[], sort: SortOrder): RowModel[] {
  const out = [...rows];
  if (sort === 'name') return out.sort(compareNames);
  if (sort === 'blocked') {
    return out.sort(
      (a, b) =>
        b.refusalsPerSec - a.refusalsPerSec ||
        b.refusalsPerSec5m - a.refusalsPerSec5m ||
        b.refusals - a.refusals ||
        compareNames(a, b),
    );
  }
  return out.sort((a, b) => {
    const ka = utilizationKey(a);
    const kb = utilizationKey(b);
    if (ka !== kb) return kb > ka ? 1 : -1;
    if (b.cores !== a.cores) return b.cores - a.cores;
    return compareNames(a, b);
  });
}

/** Case-insensitive substring match on the show id or show name; an empty filter matches everything. */
export function matchesShow(row: Pick<RowModel, 'show' | 'showId'>, filter: string | undefined): boolean {
  const f = (filter ?? '').trim().toLowerCase();
  if (f === '') return true;
  return (
    (row.showId ?? '').toLowerCase().includes(f) ||
    (row.show !== NO_VALUE && row.show.toLowerCase().includes(f))
  );
}

// ---------------------------------------------------------------------------------------------
// Header

/** Per-second rates of the status `bookings` counters; `null` without a usable previous frame. */
export function computeRates(
  previous: StatusResponse | null | undefined,
  current: StatusResponse,
  elapsedMs: number | null | undefined,
): Rates {
  if (!previous || elapsedMs === null || elapsedMs === undefined || !(elapsedMs > 0)) {
    return { bookingsPerSec: null, rejectionsPerSec: null };
  }
  // A daemon restart resets the counters (and its uptime): no rate for that frame.
  const restarted = current.uptime_s < previous.uptime_s;
  const rate = (cur: number, prev: number): number | null =>
    restarted || cur < prev ? null : ((cur - prev) * 1000) / elapsedMs;
  return {
    bookingsPerSec: rate(current.bookings.applied, previous.bookings.applied),
    rejectionsPerSec: rate(current.bookings.rejected, previous.bookings.rejected),
  };
}

/** "12.5/s" (one decimal below 100/s), "—/s" when unknown. */
export function formatRate(perSec: number | null): string {
  if (perSec === null) return `${NO_VALUE}/s`;
  return perSec < 100 ? `${perSec.toFixed(1)}/s` : `${Math.round(perSec)}/s`;
}

/** Compact duration: "850 ms"-free, second resolution: "0s", "42s", "4m05s", "3h12m", "2d04h". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  const d = Math.floor(h / 24);
  return `${d}d${String(h % 24).padStart(2, '0')}h`;
}

/** "120 ms" below 10 s, else a compact duration. */
export function formatMillis(ms: number): string {
  return ms < 10_000 ? `${Math.round(ms)} ms` : formatDuration(ms);
}

/** Sum of the per-kind drift of a report; `null` for no report. */
export function totalDrift(report: Partial<Record<VertexKind, Drift>> | null | undefined): Drift | null {
  if (!report) return null;
  const total: Drift = { cores: 0, gpus: 0, keys: 0 };
  for (const d of Object.values(report)) {
    if (!d) continue;
    total.cores += d.cores;
    total.gpus += d.gpus;
    total.keys += d.keys;
  }
  return total;
}

export function formatDrift(drift: Drift | null): string {
  if (drift === null) return `drift ${NO_VALUE}`;
  if (drift.keys === 0 && drift.cores === 0 && drift.gpus === 0) return 'drift none';
  const parts = [`${drift.cores} core${drift.cores === 1 ? '' : 's'}`];
  if (drift.gpus !== 0) parts.push(`${drift.gpus} gpu${drift.gpus === 1 ? '' : 's'}`);
  return `drift ${drift.keys} key${drift.keys === 1 ? '' : 's'} (${parts.join(', ')})`;
}

export function summarizeRecompute(status: StatusResponse, now: number): RecomputeSummary {
  const rc = status.last_recompute;
  const at = rc.at === null ? Number.NaN : Date.parse(rc.at);
  const ageMs = Number.isFinite(at) ? Math.max(0, now - at) : null;
  const drift = totalDrift(rc.drift);
  const ok = rc.ok;
  let severity: Severity = 'ok';
  let text: string;
  if (ageMs === null) {
    text = 'recompute never';
  } else {
    const when = `${formatDuration(ageMs)} ago`;
    const took = rc.duration_ms === null ? '' : ` in ${formatMillis(rc.duration_ms)}`;
    if (ok === false) {
      severity = 'over';
      text = `recompute FAILED ${when}${took}${rc.error ? `: ${rc.error}` : ''}`;
    } else {
      text = `recompute ${when}${took} · ${formatDrift(drift)}`;
      if (drift !== null && (drift.keys > 0 || drift.cores > 0 || drift.gpus > 0)) severity = 'warn';
    }
  }
  return { ageMs, durationMs: rc.duration_ms, ok, error: rc.error, drift, severity, text };
}

export function buildHeader(
  status: StatusResponse,
  now: number,
  previous?: { status: StatusResponse; elapsedMs: number } | null,
): HeaderModel {
  const rates = computeRates(previous?.status, status, previous?.elapsedMs);
  return {
    version: status.version,
    uptimeText: formatDuration(status.uptime_s * 1000),
    ready: status.ready,
    lockHeld: status.lock_held,
    lockState: status.lock?.state ?? null,
    listenerConnected: status.listener.connected,
    listenerReconnects: status.listener.reconnects,
    droppedNotifications: status.listener.dropped,
    epoch: status.epoch,
    inflight: status.inflight,
    managedShows: status.managed_shows.length,
    deferredShows: status.deferred_shows.length,
    bookingsApplied: status.bookings.applied,
    bookingsRejected: status.bookings.rejected,
    rates,
    bookingsRateText: formatRate(rates.bookingsPerSec),
    rejectionsRateText: formatRate(rates.rejectionsPerSec),
    recompute: summarizeRecompute(status, now),
  };
}

// ---------------------------------------------------------------------------------------------
// The whole frame

export function buildViewModel(
  status: StatusResponse,
  state: StateResponse,
  options: ViewOptions,
): ViewModel {
  const showNames = new Map<string, string>();
  for (const s of status.managed_shows) if (s.name) showNames.set(s.id, s.name);
  const rowOptions: RowOptions = { showNames };
  if (options.barWidth !== undefined) rowOptions.barWidth = options.barWidth;
  if (options.barStyle !== undefined) rowOptions.barStyle = options.barStyle;

  const filter = (options.show ?? '').trim();
  const ofKind = state.vertices.filter((v) => v.kind === options.vertex).map((v) => buildRow(v, rowOptions));
  const matched = sortRows(
    ofKind.filter((r) => matchesShow(r, filter)),
    options.sort,
  );
  const limit = options.maxRows === undefined ? matched.length : Math.max(0, Math.floor(options.maxRows));
  const rows = matched.slice(0, limit);
  return {
    header: buildHeader(status, options.now, options.previous),
    vertex: options.vertex,
    sort: options.sort,
    filter,
    rows,
    matched: matched.length,
    ofKind: ofKind.length,
    hidden: matched.length - rows.length,
    daemonTruncated: state.total > state.vertices.length,
    counts: { ...status.counts },
  };
}

// ---------------------------------------------------------------------------------------------
// Errors

interface ErrorLike {
  code?: unknown;
  message?: unknown;
  cause?: unknown;
}

function errorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 5 && e !== null && typeof e === 'object'; depth++) {
    const code = (e as ErrorLike).code;
    if (typeof code === 'string' && code !== '') return code;
    e = (e as ErrorLike).cause;
  }
  return undefined;
}

/**
 * The one line shown while the daemon cannot be polled, e.g.
 * `daemon at http://127.0.0.1:7878 unreachable: ECONNREFUSED — retrying`. Transport failures
 * (an error `code`, or the CLI's "cannot reach daemon at …" message) read "unreachable"; any
 * other failure (HTTP 503, a bad answer) shows its own message.
 */
export function describeFetchError(err: unknown, daemon?: string): string {
  const message = String((err as ErrorLike | null)?.message ?? err).split('\n')[0] ?? '';
  const reach = /^cannot reach daemon at (.+?): (.+)$/.exec(message);
  const where = daemon ?? reach?.[1];
  const at = where ? `daemon at ${where}` : 'daemon';
  const code = errorCode(err);
  if (reach) return `${at} unreachable: ${code ?? reach[2]} — retrying`;
  if (code && /^E[A-Z]+$/.test(code)) return `${at} unreachable: ${code} — retrying`;
  if (/^daemon( at)? /.test(message)) return `${message} — retrying`;
  return `${at}: ${message || 'request failed'} — retrying`;
}

function nonEmpty(s: string | null | undefined): string | undefined {
  return s === null || s === undefined || s === '' ? undefined : s;
}
