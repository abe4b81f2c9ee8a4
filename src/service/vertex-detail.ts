/**
 * `GET /v1/vertex`: one vertex, the caps a booking of it passes, which of them binds, and its
 * recent history — the answer to "why isn't my job getting cores?".
 */
import type { VertexDetailResponse, VertexHistoryPoint, VertexState } from '../api/types.js';
import type { Store } from '../core/store.js';
import type { LimitTable, VertexKind } from '../core/types.js';
import { refusalTables, type VertexView } from '../core/vertex.js';
import type { HistorySample } from './refusal-history.js';
import { vertexState, type RefusalSource, type VertexNames } from './state-view.js';

export interface DetailContext {
  store: Store;
  managed: ReadonlyMap<string, string>;
  names: VertexNames;
  refusals: RefusalSource;
  /** A job's folder id (the store does not keep it); undefined when unknown. */
  folderOf: (job: string) => Promise<string | undefined>;
}

/** The store's vertex for a `GET /v1/state` key (`show/alloc` for a subscription). */
export function findVertex(store: Store, kind: VertexKind, key: string): VertexView | undefined {
  if (kind === 'folder') return store.folder(key);
  if (kind === 'job') return store.job(key);
  const slash = key.indexOf('/');
  return slash < 0 ? undefined : store.subscription(key.slice(0, slash), key.slice(slash + 1));
}

export async function vertexDetail(
  context: DetailContext,
  kind: VertexKind,
  key: string,
): Promise<VertexDetailResponse | undefined> {
  const { store, managed, names, refusals } = context;
  const vertex = findVertex(store, kind, key);
  if (vertex === undefined || vertex.show === undefined || !managed.has(vertex.show)) return undefined;
  const bucket = (store.epoch & 1) as 0 | 1;
  const state = (v: VertexView): VertexState => vertexState(v, names, bucket, refusals);

  const path: VertexState[] = [];
  if (kind !== 'subscription') {
    for (const sub of store.vertices('subscription')) if (sub.show === vertex.show) path.push(state(sub));
  }
  if (kind === 'job') {
    const folderId = await context.folderOf(vertex.id);
    const folder = folderId === undefined ? undefined : store.folder(folderId);
    if (folder !== undefined) path.push(state(folder));
  }
  const self = state(vertex);
  path.push(self);

  return {
    vertex: self,
    path,
    binding: bindingCap(path),
    history: historyPoints(refusals.history.history(vertex)),
    sample_ms: refusals.history.sampleMs,
  };
}

/**
 * The cap refusing most over the last minute; when none refuses, the fullest enforced one
 * (for a folder/job, its core or GPU cap, whichever is fuller).
 */
export function bindingCap(path: readonly VertexState[]): VertexDetailResponse['binding'] {
  let refusing: { row: VertexState; rate: number } | undefined;
  for (const row of path) {
    const rate = row.refusals?.per_s_1m ?? 0;
    if (rate > 0 && (refusing === undefined || rate > refusing.rate)) refusing = { row, rate };
  }
  if (refusing !== undefined) {
    const byTable = refusing.row.refusals?.by_table ?? {};
    const [cores, gpus] = refusalTables(refusing.row.kind);
    const table = gpus !== undefined && (byTable[gpus] ?? 0) > (byTable[cores] ?? 0) ? gpus : cores;
    return { key: refusing.row.key, table, reason: 'refusing' };
  }
  let fullest: { key: string; table: LimitTable; share: number } | undefined;
  for (const row of path) {
    const [coreTable, gpuTable] = refusalTables(row.kind);
    const shares: [LimitTable, number][] = [];
    if (row.kind === 'subscription')
      shares.push([coreTable, row.max_cores > 0 ? row.cores / row.max_cores : 1]);
    else if (row.max_cores > 0) shares.push([coreTable, row.cores / row.max_cores]);
    if (gpuTable !== undefined && row.max_gpus > 0) shares.push([gpuTable, row.gpus / row.max_gpus]);
    for (const [table, share] of shares) {
      if (fullest === undefined || share > fullest.share) fullest = { key: row.key, table, share };
    }
  }
  return fullest === undefined ? null : { key: fullest.key, table: fullest.table, reason: 'fullest' };
}

/** Samples as points, each with the refusal rate since the previous sample. */
export function historyPoints(samples: readonly HistorySample[]): VertexHistoryPoint[] {
  const points: VertexHistoryPoint[] = [];
  for (let i = 0; i < samples.length; i++) {
    const sample = samples[i]!;
    const previous = samples[i - 1];
    const seconds = previous === undefined ? 0 : (sample.at - previous.at) / 1000;
    points.push({
      at: new Date(sample.at).toISOString(),
      utilization: sample.utilization,
      refusals_per_s: seconds > 0 ? Math.max(0, sample.refusals - previous!.refusals) / seconds : 0,
    });
  }
  return points;
}
