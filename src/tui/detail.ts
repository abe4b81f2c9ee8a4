/**
 * The detail pane of `inspect` (Enter on a row), shared by the Ink app and `--once --key`:
 * the caps a booking of the vertex passes (booked/cap each, which one binds, refusals per
 * table) and sparklines of its last ~10 minutes of utilization and refusals.
 *
 * Pure and Ink-free, like layout.ts.
 */
import type { VertexDetailResponse } from '../api/types.js';
import { COLUMN_GAP, fit, type Line, type Segment } from './layout.js';
import { buildRow, formatDuration, formatRate, type BarStyle, type RowModel } from './view-model.js';

const SPARK_GLYPHS: Record<BarStyle, readonly string[]> = {
  unicode: ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'],
  ascii: ['_', '.', ':', '-', '=', '+', '*', '#'],
};

/**
 * `values` as a sparkline of exactly `width` characters, newest on the right: each cell is the
 * largest value of its slice (a spike never disappears), scaled to `max`; a gap (no sample)
 * is a space, and fewer values than cells leave the left blank.
 */
export function sparkline(
  values: readonly (number | null)[],
  width: number,
  options: { max?: number; style?: BarStyle } = {},
): string {
  const w = Math.max(0, Math.floor(width));
  if (w === 0) return '';
  const glyphs = SPARK_GLYPHS[options.style ?? 'unicode'];
  const cells: (number | null)[] = [];
  if (values.length <= w) {
    cells.push(...new Array<null>(w - values.length).fill(null), ...values);
  } else {
    for (let i = 0; i < w; i++) {
      const from = Math.floor((i * values.length) / w);
      const to = Math.floor(((i + 1) * values.length) / w);
      let top: number | null = null;
      for (let j = from; j < to; j++) {
        const v = values[j];
        if (v !== null && v !== undefined && (top === null || v > top)) top = v;
      }
      cells.push(top);
    }
  }
  const max = options.max ?? Math.max(0, ...cells.map((c) => c ?? 0));
  return cells
    .map((c) => {
      if (c === null) return ' ';
      if (!(max > 0) || c <= 0) return glyphs[0]!;
      const level = Math.min(glyphs.length - 1, Math.ceil((Math.min(c, max) / max) * glyphs.length) - 1);
      return glyphs[Math.max(0, level)]!;
    })
    .join('');
}

const KIND_WIDTH = 14;
const BOOKED_WIDTH = 12;
const UTIL_WIDTH = 7;
const RATE_WIDTH = 7;

/** "job 3 · gpus 0": the core table by name, its GPU table (folder_gpus, job_gpus) as "gpus". */
function byTableText(row: RowModel, detailRow: VertexDetailResponse['path'][number]): string {
  const byTable = detailRow.refusals?.by_table ?? {};
  const parts = Object.entries(byTable).map(
    ([table, count]) => `${table.endsWith('_gpus') ? 'gpus' : table} ${count}`,
  );
  return parts.length === 0 ? (row.refusals > 0 ? String(row.refusals) : '') : parts.join(' · ');
}

export interface DetailOptions {
  columns: number;
  /** Wall clock for "last refusal 4s ago". */
  now: number;
  barStyle?: BarStyle;
  /** Show id → name for rows without one. */
  showNames?: ReadonlyMap<string, string>;
}

/** The pane as lines: title, column header, one line per cap in the path, the two sparklines. */
export function detailLines(detail: VertexDetailResponse, options: DetailOptions): Line[] {
  const width = Math.max(40, Math.floor(options.columns)) - 1;
  const rowOptions = options.showNames ? { showNames: options.showNames } : {};
  const self = buildRow(detail.vertex, rowOptions);
  const binding = detail.binding;
  const lines: Line[] = [];

  const title: Line = [
    { text: `${self.kind} ${self.name}`, bold: true },
    { text: ` (show ${self.show})`, tone: 'dim' },
  ];
  if (binding !== null) {
    const bound = detail.path.find((p) => p.key === binding.key);
    const boundName = bound === undefined ? binding.key : buildRow(bound, rowOptions).name;
    title.push(
      { text: ' · ', tone: 'dim' },
      binding.reason === 'refusing'
        ? { text: `refused by ${binding.table} (${boundName})`, tone: 'over', bold: true }
        : { text: `fullest: ${binding.table} (${boundName})`, tone: 'warn' },
    );
  }
  lines.push(title);

  const rest = Math.max(0, width - KIND_WIDTH - BOOKED_WIDTH - UTIL_WIDTH - RATE_WIDTH - 5);
  const nameWidth = Math.min(48, Math.max(8, Math.floor(rest * 0.45)));
  const tableWidth = Math.max(0, rest - nameWidth);
  lines.push([
    {
      text: [
        fit('CAP', KIND_WIDTH),
        fit('NAME', nameWidth),
        fit('BOOKED/CAP', BOOKED_WIDTH, 'right'),
        fit('UTIL', UTIL_WIDTH, 'right'),
        fit('REF/S', RATE_WIDTH, 'right'),
        fit('REFUSALS', tableWidth),
      ]
        .join(COLUMN_GAP)
        .trimEnd(),
      bold: true,
      tone: 'dim',
    },
  ]);
  for (const entry of detail.path) {
    const row = buildRow(entry, rowOptions);
    const binds = binding !== null && binding.key === entry.key;
    const tone = row.severity === 'ok' ? undefined : row.severity;
    const toned = (text: string): Segment => (tone ? { text, tone } : { text });
    lines.push([
      { text: fit(`${binds ? '▶ ' : '  '}${row.kind}`, KIND_WIDTH), ...(binds ? { bold: true } : {}) },
      { text: COLUMN_GAP + fit(row.name, nameWidth) + COLUMN_GAP },
      toned(fit(row.bookedText, BOOKED_WIDTH, 'right')),
      { text: COLUMN_GAP },
      toned(fit(row.utilizationText, UTIL_WIDTH, 'right')),
      { text: COLUMN_GAP },
      row.refusalsPerSec > 0
        ? { text: fit(formatRate(row.refusalsPerSec), RATE_WIDTH, 'right'), tone: 'warn', bold: true }
        : { text: fit(row.refusals > 0 ? '0/s' : '', RATE_WIDTH, 'right'), tone: 'dim' },
      { text: (COLUMN_GAP + fit(byTableText(row, entry), tableWidth)).trimEnd() },
    ]);
  }

  const style = options.barStyle ?? 'unicode';
  const label = 18;
  const sparkWidth = Math.max(10, width - label - 16);
  const history = detail.history;
  const utilValues = history.map((p) => p.utilization);
  const rateValues = history.map((p) => p.refusals_per_s);
  const maxRate = Math.max(0, ...rateValues);
  const span =
    history.length >= 2 ? formatDuration(Date.parse(history.at(-1)!.at) - Date.parse(history[0]!.at)) : '—';
  lines.push([{ text: '' }]);
  if (history.length === 0) {
    lines.push([{ text: 'no history: it has not refused a booking nor neared its cap lately', tone: 'dim' }]);
  } else {
    lines.push([
      { text: fit(`utilization ${span}`, label), tone: 'dim' },
      { text: sparkline(utilValues, sparkWidth, { max: 1, style }), tone: 'accent' },
      { text: ` now ${self.utilizationText}`, tone: 'dim' },
    ]);
    lines.push([
      { text: fit(`refusals/s ${span}`, label), tone: 'dim' },
      {
        text: sparkline(rateValues, sparkWidth, { max: maxRate, style }),
        tone: maxRate > 0 ? 'warn' : 'dim',
      },
      { text: ` max ${formatRate(maxRate)}`, tone: 'dim' },
    ]);
  }
  const lastAt = detail.vertex.refusals?.last_at;
  const last = lastAt ? Date.parse(lastAt) : Number.NaN;
  lines.push([
    {
      text: Number.isFinite(last)
        ? `last refusal ${formatDuration(Math.max(0, options.now - last))} ago · ${self.refusals} since the daemon started`
        : `no refusal recorded${self.refusals > 0 ? ` lately (${self.refusals} since the daemon started)` : ''}`,
      tone: 'dim',
    },
  ]);
  return lines;
}
