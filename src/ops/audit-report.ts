/** The text of `cueacct recompute`: the drift table and the summary lines. */
import { ACCOUNTING_TABLES } from '../db/rewrite.js';
import type { Amount, AuditRepair, AuditResult, DriftEntry } from './audit.js';
import { formatNumber, formatSigned, plural, renderTable, type Column } from './format.js';

function nameOf(e: DriftEntry): string {
  const name = e.name ?? e.key;
  if (e.vertex === 'layer') return `${name} (layer ${e.key.slice(0, 8)})`;
  return name;
}

function value(a: Amount | null, showGpus: boolean, extra = ''): string {
  if (a === null) return '=';
  return `${formatNumber(a.cores)}c${showGpus ? ` ${a.gpus}g` : ''}${extra}`;
}

function hasGpus(e: DriftEntry): boolean {
  return [e.expected, e.pg, e.daemon, e.pg_drift, e.daemon_drift].some((a) => a !== null && a.gpus !== 0);
}

function driftText(e: DriftEntry): string {
  const parts: string[] = [];
  const describe = (where: string, d: Amount) =>
    `${where} ${formatSigned(d.cores)}c${d.gpus !== 0 ? ` ${formatSigned(d.gpus)}g` : ''}`;
  if (e.pg_drift !== null) parts.push(describe('table', e.pg_drift));
  if (e.daemon_drift !== null) parts.push(describe('daemon', e.daemon_drift));
  return parts.join('; ');
}

const DRIFT_COLUMNS: Column<DriftEntry>[] = [
  { header: 'VERTEX', value: (e) => e.vertex },
  { header: 'SHOW', value: (e) => e.show_name ?? e.show },
  { header: 'NAME', value: nameOf },
  { header: 'EXPECTED', align: 'right', value: (e) => value(e.expected, hasGpus(e)) },
  { header: 'PG TABLE', align: 'right', value: (e) => value(e.pg, hasGpus(e)) },
  {
    header: 'DAEMON',
    align: 'right',
    value: (e) =>
      e.daemon === null
        ? '-'
        : value(
            e.daemon,
            hasGpus(e),
            e.daemon.carried_cores > 0 ? ` (${formatNumber(e.daemon.carried_cores)} carried)` : '',
          ),
  },
  { header: 'DRIFT', value: driftText },
];

export function renderDriftTable(entries: readonly DriftEntry[]): string {
  return renderTable(entries, DRIFT_COLUMNS);
}

function scopeText(result: AuditResult): string {
  const shows = result.scope.shows;
  if (result.scope.kind === 'show') return `show ${shows[0]?.name ?? '?'}`;
  if (result.scope.kind === 'all') return `all ${plural(shows.length, 'show')}`;
  return plural(shows.length, 'scheduler-managed show');
}

function daemonText(result: AuditResult): string {
  const d = result.daemon;
  switch (d.comparison) {
    case 'compared':
      return `daemon at ${d.url}: ${plural(result.checked.daemon_vertices, 'vertex', 'vertices')} compared`;
    case 'unreachable':
      return `daemon at ${d.url} not reachable: store not compared`;
    case 'not_ready':
      return `daemon at ${d.url} not ready: store not compared`;
    case 'skipped':
      return 'no daemon: store not compared';
  }
}

/**
 * The report for a terminal or cron mail. Empty when everything is fine and not `verbose`:
 * cron stays quiet unless there is something to read.
 */
export function renderAudit(result: AuditResult, verbose: boolean): string {
  if (result.ok && !verbose) return '';
  const lines: string[] = [];
  const tables = Object.values(result.checked.tables).reduce((a, b) => a + b, 0);
  const checked = `${plural(tables, 'PG row')} of ${scopeText(result)}; ${daemonText(result)}`;
  if (result.drift.length === 0) {
    lines.push(`No drift: ${checked}.`);
  } else {
    const pg = result.drift.filter((e) => e.pg_drift !== null).length;
    const daemon = result.drift.filter((e) => e.daemon_drift !== null).length;
    lines.push(
      `Drift found in ${plural(result.drift.length, 'key')} (${plural(pg, 'PG table row')}, ` +
        `${plural(daemon, 'daemon vertex', 'daemon vertices')} off): ${checked}.`,
      '',
      renderDriftTable(result.drift),
      '',
      'c = cores, g = GPUs; "=" agrees with SUM(proc); the daemon may carry in-flight bookings above SUM(proc).',
    );
  }
  if (result.lag.length > 0) {
    lines.push(
      `${result.lag.length === 1 ? '1 PG row of scheduler-managed shows trails' : `${result.lag.length} PG rows of scheduler-managed shows trail`} SUM(proc) (display copies the ` +
        `daemon rewrites at every recompute; not counted, --strict counts them).`,
    );
    if (verbose) lines.push('', renderDriftTable(result.lag));
  }
  for (const problem of result.problems) lines.push(`problem: ${problem}`);
  if (result.repair !== null) lines.push(...repairLines(result.repair));
  if (verbose) {
    lines.push(
      `checked: ${ACCOUNTING_TABLES.map((t) => `${t} ${result.checked.tables[t]}`).join(', ')}; ` +
        `took ${formatNumber(result.duration_ms, 1)} ms`,
    );
    if (result.daemon.error !== null) lines.push(`daemon: ${result.daemon.error}`);
  }
  return lines.join('\n');
}

function repairLines(repair: AuditRepair): string[] {
  const lines: string[] = [];
  if (repair.rewritten === null) {
    lines.push('Repair: nothing rewritten (no scheduler-managed show in scope; Cuebot owns those tables).');
  } else {
    const total = Object.values(repair.rewritten).reduce((a, b) => a + b, 0);
    const detail = ACCOUNTING_TABLES.filter((t) => repair.rewritten![t] > 0)
      .map((t) => `${t} ${repair.rewritten![t]}`)
      .join(', ');
    lines.push(`Repair: rewrote ${plural(total, 'PG row')} from SUM(proc)${detail ? ` (${detail})` : ''}.`);
  }
  if (repair.daemon_recompute === 'done') lines.push('Repair: the daemon ran a recompute pass.');
  else if (repair.daemon_recompute === 'failed')
    lines.push(`Repair: the daemon's recompute failed: ${repair.daemon_error}`);
  lines.push(
    repair.remaining === 0
      ? 'After the repair: no drift.'
      : `After the repair: ${plural(repair.remaining, 'finding')} remain (rerun with --dry-run --verbose).`,
  );
  return lines;
}
