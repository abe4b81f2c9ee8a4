/**
 * `cueacct seed`: the daemon's bootstrap seed (or the flip seed of one show) run into a fresh
 * store, and a report of what it loaded, per vertex booked against cap. `flip-show` shows the
 * same report for the show it flips: it is exactly what the daemon will enforce.
 */
import { performance } from 'node:perf_hooks';

import type { Sql } from 'postgres';

import { Store } from '../core/store.js';
import { VERTEX_KINDS, type VertexKind } from '../core/types.js';
import { isOverCap, utilization, type VertexView } from '../core/vertex.js';
import type { ShowRow } from '../db/queries.js';
import { seedStore } from '../service/seed.js';
import { formatCap, formatMs, formatPercent, plural, renderTable, round3, type Column } from './format.js';

/** One vertex as loaded: whole cores and GPUs; caps as the store enforces them. */
export interface SeedVertex {
  kind: VertexKind;
  /** `show/alloc` for a subscription, else the folder or job id. */
  key: string;
  show: string;
  show_name: string | null;
  alloc: string | null;
  /** Alloc name for a subscription, else the folder or job name. */
  name: string | null;
  cores: number;
  gpus: number;
  /** Subscription burst (0 = reject every booking) or folder/job max cores (<= 0 = unlimited). */
  max_cores: number;
  /** Folder/job max GPUs (<= 0 = unlimited); null for a subscription. */
  max_gpus: number | null;
  /** Fullest enforced share (cores / cap, GPUs / cap), or null when nothing is capped. */
  utilization: number | null;
  /** Booked above an enforced cap (the cap was lowered under running work). */
  over_cap: boolean;
}

export interface SeedReport {
  /** `bootstrap`: every scheduler-managed show; `show`: the flip seed of one show. */
  mode: 'bootstrap' | 'show';
  shows: { id: string; name: string; managed: boolean }[];
  multiplier: number;
  duration_ms: number;
  /** Rows of the booked-sums query (one per show × alloc × folder × job with procs). */
  proc_groups: number;
  counts: Record<VertexKind, number>;
  /** Sorted fullest first, then by show and name. */
  vertices: SeedVertex[];
}

/** Run the bootstrap seed (`seedStore`, the daemon's own) for `shows` into a fresh store. */
export async function runSeed(
  sql: Sql,
  shows: readonly (ShowRow & { managed: boolean })[],
  multiplier: number,
  mode: SeedReport['mode'],
): Promise<SeedReport> {
  const store = new Store();
  const started = performance.now();
  const result = await seedStore(sql, store, shows, multiplier);
  const duration = performance.now() - started;

  const showNames = new Map(shows.map((show) => [show.id, show.name]));
  const allocNames = new Map(result.caps.subscriptions.map((row) => [row.alloc, row.allocName]));
  const folderNames = new Map(result.caps.folders.map((row) => [row.id, row.name]));
  const jobNames = new Map(result.caps.jobs.map((row) => [row.id, row.name]));
  const names: Record<VertexKind, Map<string, string>> = {
    subscription: allocNames,
    folder: folderNames,
    job: jobNames,
  };

  const vertices: SeedVertex[] = [];
  const counts = { subscription: 0, folder: 0, job: 0 } as Record<VertexKind, number>;
  for (const kind of VERTEX_KINDS) {
    for (const vertex of store.vertices(kind)) {
      if (vertex.show === undefined) continue;
      counts[kind]++;
      vertices.push(describeVertex(vertex, vertex.show, showNames.get(vertex.show) ?? null, names[kind]));
    }
  }
  sortVertices(vertices);
  return {
    mode,
    shows: shows.map((show) => ({ id: show.id, name: show.name, managed: show.managed })),
    multiplier,
    duration_ms: round3(duration),
    proc_groups: result.procGroups,
    counts,
    vertices,
  };
}

function describeVertex(
  vertex: VertexView,
  show: string,
  showName: string | null,
  names: Map<string, string>,
): SeedVertex {
  const subscription = vertex.kind === 'subscription';
  return {
    kind: vertex.kind,
    key: subscription ? `${show}/${vertex.id}` : vertex.id,
    show,
    show_name: showName,
    alloc: subscription ? vertex.id : null,
    name: names.get(vertex.id) ?? null,
    cores: vertex.cores,
    gpus: vertex.gpus,
    max_cores: vertex.maxCores,
    max_gpus: subscription ? null : vertex.maxGpus,
    utilization: utilization(vertex),
    over_cap: isOverCap(vertex),
  };
}

function label(row: SeedVertex): string {
  return `${row.show_name ?? row.show}/${row.name ?? row.key}`;
}

function sortVertices(rows: SeedVertex[]): void {
  rows.sort(
    (a, b) =>
      (b.utilization ?? -1) - (a.utilization ?? -1) || b.cores - a.cores || label(a).localeCompare(label(b)),
  );
}

// ---- text ---------------------------------------------------------------------------------

const TITLES: Record<VertexKind, string> = {
  subscription: 'Subscriptions (show × allocation; burst 0 rejects every booking)',
  folder: 'Folders',
  job: 'Jobs',
};

function useColumn(): Column<SeedVertex> {
  return {
    header: 'USE',
    align: 'right',
    value: (row) => `${formatPercent(row.utilization)}${row.over_cap ? ' OVER CAP' : ''}`,
  };
}

const SHOW_COLUMN: Column<SeedVertex> = { header: 'SHOW', value: (row) => row.show_name ?? row.show };

const COLUMNS: Record<VertexKind, Column<SeedVertex>[]> = {
  subscription: [
    SHOW_COLUMN,
    { header: 'ALLOC', value: (row) => row.name ?? row.alloc ?? row.key },
    { header: 'BOOKED', align: 'right', value: (row) => String(row.cores) },
    { header: 'BURST', align: 'right', value: (row) => String(row.max_cores) },
    useColumn(),
  ],
  folder: nodeColumns('FOLDER'),
  job: nodeColumns('JOB'),
};

function nodeColumns(title: string): Column<SeedVertex>[] {
  return [
    SHOW_COLUMN,
    { header: title, value: (row) => row.name ?? row.key },
    { header: 'CORES', align: 'right', value: (row) => String(row.cores) },
    { header: 'MAX CORES', align: 'right', value: (row) => formatCap(row.max_cores, true) },
    { header: 'GPUS', align: 'right', value: (row) => String(row.gpus) },
    { header: 'MAX GPUS', align: 'right', value: (row) => formatCap(row.max_gpus ?? -1, true) },
    useColumn(),
  ];
}

/** One line: what was seeded, how much, how fast. */
export function seedSummary(report: SeedReport): string {
  const what =
    report.mode === 'show'
      ? `the flip seed of show ${report.shows.map((s) => s.name).join(', ')}`
      : `the bootstrap seed of ${plural(report.shows.length, 'scheduler-managed show')}`;
  const c = report.counts;
  return (
    `Ran ${what} in ${formatMs(report.duration_ms)}: ${plural(c.subscription, 'subscription')}, ` +
    `${plural(c.folder, 'folder')}, ${plural(c.job, 'job')} ` +
    `(${plural(report.proc_groups, 'proc group')}; cores are whole cores, database values / ${report.multiplier}).`
  );
}

/** Per vertex kind, booked versus cap, fullest first. */
export function renderVertexTables(vertices: readonly SeedVertex[]): string {
  const parts: string[] = [];
  for (const kind of VERTEX_KINDS) {
    const rows = vertices.filter((row) => row.kind === kind);
    if (rows.length === 0) continue;
    parts.push(`${TITLES[kind]}\n${renderTable(rows, COLUMNS[kind])}`);
  }
  return parts.join('\n\n');
}

export function renderSeedReport(report: SeedReport): string {
  const lines = [seedSummary(report)];
  const notManaged = report.mode === 'show' ? report.shows.filter((show) => !show.managed) : [];
  if (notManaged.length > 0) {
    lines.push(
      `Show ${notManaged.map((s) => s.name).join(', ')} is not scheduler-managed: ` +
        'this is what the daemon would load if it were flipped now.',
    );
  }
  const over = report.vertices.filter((row) => row.over_cap).length;
  if (over > 0) {
    lines.push(
      `${plural(over, 'vertex is', 'vertices are')} booked above its cap: new bookings there are rejected until usage drops.`,
    );
  }
  if (report.vertices.length === 0) lines.push('Nothing to load: no subscriptions, folders or jobs.');
  else lines.push('', renderVertexTables(report.vertices));
  return lines.join('\n');
}
