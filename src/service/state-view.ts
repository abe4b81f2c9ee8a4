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
import type { StateQuery } from './types.js';

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

/** Where per-vertex refusal rates come from (the service's sampled history) and the time now. */
export interface RefusalSource {
  history: RefusalHistory;
  now: number;
}

/** `managed`: published show id → name; only their vertices are listed. */
export function stateResponse(
  store: Store,
  managed: ReadonlyMap<string, string>,
  names: VertexNames,
  query: StateQuery,
  refusals?: RefusalSource,
): StateResponse {
  const kinds = query.vertex === undefined ? VERTEX_KINDS : [query.vertex];
  const showFilter = query.show === undefined ? undefined : resolveShow(managed, query.show);
  const bucket = (store.epoch & 1) as 0 | 1;
  const rows: VertexState[] = [];
  for (const kind of kinds) {
    for (const vertex of store.vertices(kind)) {
      if (vertex.show === undefined || !managed.has(vertex.show)) continue;
      if (showFilter !== undefined && vertex.show !== showFilter) continue;
      rows.push(vertexState(vertex, names, bucket, refusals));
    }
  }
  sortStates(rows, query.sort ?? 'utilization');
  return {
    epoch: store.epoch,
    total: rows.length,
    vertices: query.top === undefined ? rows : rows.slice(0, query.top),
  };
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

function sortStates(rows: VertexState[], sort: NonNullable<StateQuery['sort']>): void {
  const label = (row: VertexState) => `${row.show_name ?? row.show ?? ''}/${row.name ?? row.key}`;
  if (sort === 'name') rows.sort((a, b) => label(a).localeCompare(label(b)));
  else if (sort === 'cores') rows.sort((a, b) => b.cores - a.cores || label(a).localeCompare(label(b)));
  else if (sort === 'blocked') rows.sort((a, b) => compareBlocked(a, b) || label(a).localeCompare(label(b)));
  else rows.sort((a, b) => (b.utilization ?? -1) - (a.utilization ?? -1) || b.cores - a.cores);
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
