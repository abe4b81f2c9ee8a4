/**
 * `GET /v1/state`: the store's vertices of published shows, with the human names the last
 * cap reads brought, sorted and cut for a status page or the TUI.
 */
import type { StateResponse, VertexRefusals, VertexState } from '../api/types.js';
import type { Store } from '../core/store.js';
import { VERTEX_KINDS } from '../core/types.js';
import { refusalsByTable, utilization, type VertexView } from '../core/vertex.js';
import type { NamedCapRows } from '../db/queries.js';
import type { RefusalHistory } from './refusal-history.js';
import { nextTurn } from './event-loop.js';
import { encodeCursor, type StateCursor } from './state-cursor.js';
import { STATE_PAGE_DEFAULT, type StateQuery } from './types.js';

/** Names of shows, allocs, folders and jobs, remembered from the cap reads. */
export class VertexNames {
  private readonly shows = new Map<string, string>();
  private readonly allocs = new Map<string, string>();
  private readonly folders = new Map<string, string>();
  private readonly jobs = new Map<string, string>();

  rememberShow(id: string, name: string): void {
    this.shows.set(id, name);
  }

  remember(rows: NamedCapRows): void {
    for (const row of rows.subscriptions) this.allocs.set(row.alloc, row.allocName);
    for (const row of rows.folders) this.folders.set(row.id, row.name);
    for (const row of rows.jobs) this.jobs.set(row.id, row.name);
  }

  /** The folder's, job's, or (for a subscription) the alloc's name. */
  of(vertex: VertexView): string | null {
    const names = vertex.kind === 'folder' ? this.folders : vertex.kind === 'job' ? this.jobs : this.allocs;
    return names.get(vertex.id) ?? null;
  }

  show(id: string | undefined): string | null {
    return id === undefined ? null : (this.shows.get(id) ?? null);
  }
}

/** Vertices looked at between two yields to the event loop: well under a millisecond of work. */
const SCAN_SLICE = 2_048;

/** Where per-vertex refusal rates come from (the service's sampled history) and the time now. */
export interface RefusalSource {
  history: RefusalHistory;
  now: number;
}

/**
 * `managed`: published show id → name; only their vertices are listed.
 *
 * Built over several event-loop turns (a yield every {@link SCAN_SLICE} vertices), so a
 * booking never waits behind a big read: the answer is not one instant's snapshot, each row
 * is as of when it was read. Without `top` one page of at most `limit` rows in the store's
 * order, with a cursor to the next; with `top` the first N after sorting.
 */
export async function stateResponse(
  store: Store,
  managed: ReadonlyMap<string, string>,
  names: VertexNames,
  query: StateQuery,
  refusals?: RefusalSource,
): Promise<StateResponse> {
  const kinds = query.vertex === undefined ? VERTEX_KINDS : [query.vertex];
  const showFilter = query.show === undefined ? undefined : resolveShow(managed, query.show);
  const bucket = (store.epoch & 1) as 0 | 1;
  const top = query.top;
  const limit = top ?? query.limit ?? STATE_PAGE_DEFAULT;
  const sort = query.sort ?? 'utilization';
  const start = top === undefined ? query.cursor : undefined;
  let rows: VertexState[] = [];
  let total = 0;
  let last: StateCursor | undefined;
  let more = false;
  let scanned = 0;
  const walkRemovals = store.removals;
  // Every vertex forgotten since the cursor was made may have moved a position left: start
  // that many earlier (a repeat, never a skip), and keep doing so for removals between turns.
  let seenRemovals = start === undefined ? walkRemovals : start.removals;
  for (const kind of kinds) {
    const kindIndex = VERTEX_KINDS.indexOf(kind);
    // Positions before the cursor were listed by earlier pages: counted, not listed again.
    let from =
      start === undefined
        ? 0
        : start.kind > kindIndex
          ? Infinity
          : start.kind === kindIndex
            ? start.position
            : 0;
    let position = 0;
    for (const vertex of store.vertices(kind)) {
      if (++scanned % SCAN_SLICE === 0) await nextTurn();
      if (store.removals !== seenRemovals) {
        from = Math.max(0, from - (store.removals - seenRemovals));
        seenRemovals = store.removals;
      }
      position++;
      if (vertex.show === undefined || !managed.has(vertex.show)) continue;
      if (showFilter !== undefined && vertex.show !== showFilter) continue;
      total++;
      if (position <= from) continue;
      if (top !== undefined) {
        rows.push(vertexState(vertex, names, bucket, refusals));
        // Keep the best `top` of what was seen: sort and cut whenever twice as many piled up.
        if (rows.length >= 2 * top + SCAN_SLICE) rows = sortStates(rows, sort).slice(0, top);
      } else if (rows.length < limit) {
        rows.push(vertexState(vertex, names, bucket, refusals));
        last = { kind: kindIndex, position, removals: walkRemovals };
      } else {
        more = true; // the page is full and another match follows: there is a next page
      }
    }
  }
  if (top !== undefined) {
    return { epoch: store.epoch, total, vertices: sortStates(rows, sort).slice(0, top), next_cursor: null };
  }
  const nextCursor = more && last !== undefined ? encodeCursor(last) : null;
  return { epoch: store.epoch, total, vertices: rows, next_cursor: nextCursor };
}

function resolveShow(managed: ReadonlyMap<string, string>, idOrName: string): string {
  if (managed.has(idOrName)) return idOrName;
  for (const [id, name] of managed) if (name === idOrName) return id;
  return idOrName;
}

/** `bucket`: the settled bucket of the current epoch (what the next overwrite carries). */
export function vertexState(
  vertex: VertexView,
  names: VertexNames,
  bucket: 0 | 1,
  refusals?: RefusalSource,
): VertexState {
  const state: VertexState = {
    kind: vertex.kind,
    key: vertex.kind === 'subscription' ? `${vertex.show}/${vertex.id}` : vertex.id,
    show: vertex.show ?? null,
    alloc: vertex.alloc ?? null,
    name: names.of(vertex),
    show_name: names.show(vertex.show),
    cores: vertex.cores,
    gpus: vertex.gpus,
    inflight_cores: vertex.inflightCores,
    inflight_gpus: vertex.inflightGpus,
    settled_cores: vertex.settledCores(bucket),
    settled_gpus: vertex.settledGpus(bucket),
    max_cores: vertex.maxCores,
    max_gpus: vertex.maxGpus,
    utilization: utilization(vertex),
  };
  if (refusals !== undefined) state.refusals = vertexRefusals(vertex, refusals);
  return state;
}

function vertexRefusals(vertex: VertexView, source: RefusalSource): VertexRefusals {
  const rates = source.history.rates(vertex, source.now);
  return {
    total: vertex.refusedCores + vertex.refusedGpus,
    by_table: refusalsByTable(vertex),
    per_s_1m: rates.perSecond1m,
    per_s_5m: rates.perSecond5m,
    last_at: rates.lastAt === null ? null : new Date(rates.lastAt).toISOString(),
  };
}

/**
 * Sort in place and return the rows. Each row's sort key is computed once (not per
 * comparison), and names compare case-insensitively by code point: a locale-aware compare
 * per comparison cost ~100 ms for 12,000 rows, a stall bookings would wait behind.
 */
function sortStates(rows: VertexState[], sort: NonNullable<StateQuery['sort']>): VertexState[] {
  if (sort === 'utilization') {
    return rows.sort((a, b) => (b.utilization ?? -1) - (a.utilization ?? -1) || b.cores - a.cores);
  }
  const keyed = rows.map((row) => ({
    row,
    label: `${row.show_name ?? row.show ?? ''}/${row.name ?? row.key}`.toLowerCase(),
  }));
  const byLabel = (a: { label: string }, b: { label: string }) =>
    a.label < b.label ? -1 : a.label > b.label ? 1 : 0;
  if (sort === 'name') keyed.sort(byLabel);
  else if (sort === 'blocked') keyed.sort((a, b) => compareBlocked(a.row, b.row) || byLabel(a, b));
  else keyed.sort((a, b) => b.row.cores - a.row.cores || byLabel(a, b));
  for (let i = 0; i < keyed.length; i++) rows[i] = keyed[i]!.row;
  return rows;
}

/** Most refused first: the last minute's rate, then the five minutes', then the total. */
export function compareBlocked(a: Pick<VertexState, 'refusals'>, b: Pick<VertexState, 'refusals'>): number {
  const ra = a.refusals;
  const rb = b.refusals;
  return (
    (rb?.per_s_1m ?? 0) - (ra?.per_s_1m ?? 0) ||
    (rb?.per_s_5m ?? 0) - (ra?.per_s_5m ?? 0) ||
    (rb?.total ?? 0) - (ra?.total ?? 0)
  );
}
