/**
 * `cueacct inspect --once`: one frame as plain text, for scripts and non-TTY output. The same
 * information and layout as the live app (shared {@link headerLines} / {@link rowLine}), fixed
 * column widths, ASCII bars by default, and ANSI colour only when asked for (`color: true`,
 * i.e. when stdout is a terminal).
 *
 * Must not import `ink` or `react`: the command loads this module on its fast path.
 */
import type { StateResponse, StatusResponse, VertexDetailResponse } from '../api/types.js';
import { detailLines } from './detail.js';
import {
  columnWidths,
  emptyLine,
  headerLines,
  lineText,
  moreLine,
  rowLine,
  tableHeaderLine,
  titleLine,
  type Line,
  type Tone,
} from './layout.js';
import { buildViewModel, type BarStyle, type SortOrder, type VertexKind } from './view-model.js';

export interface PlainFrameOptions {
  vertex: VertexKind;
  sort: SortOrder;
  /** Show filter (case-insensitive substring of a show id or name). */
  show?: string;
  /** Emit ANSI colours (pass `stdout.isTTY`); default false. */
  color?: boolean;
  /** Line width to lay the table out for; default 100. */
  columns?: number;
  /** Print at most this many rows (a "… N more" line follows); default all. */
  maxRows?: number;
  /** Wall clock for the recompute age; default `Date.now()`. */
  now?: number;
  /** A previous status and the time since, for per-second rates (otherwise totals are shown). */
  previous?: { status: StatusResponse; elapsedMs: number } | null;
  /** Bar glyphs; default `ascii`. */
  barStyle?: BarStyle;
  /** The detail pane of one vertex (`--key`), printed instead of the table. */
  detail?: VertexDetailResponse;
}

const ANSI: Record<Tone, string> = {
  good: '32',
  ok: '32',
  warn: '33',
  full: '35',
  over: '31',
  dim: '2',
  accent: '36',
};

/** A line as text, with SGR codes per segment when `color` is set. */
export function formatLine(line: Line, color: boolean): string {
  if (!color) return lineText(line).trimEnd();
  let out = '';
  for (const seg of line) {
    const codes: string[] = [];
    if (seg.bold) codes.push('1');
    if (seg.inverse) codes.push('7');
    if (seg.tone) codes.push(ANSI[seg.tone]);
    out += codes.length > 0 && seg.text !== '' ? `\x1b[${codes.join(';')}m${seg.text}\x1b[0m` : seg.text;
  }
  return out.replace(/ +$/, '');
}

/** One frame of `inspect` as text, ending with a newline. */
export function renderPlainFrame(
  status: StatusResponse,
  state: StateResponse,
  options: PlainFrameOptions,
): string {
  const color = options.color ?? false;
  const widths = columnWidths(options.columns ?? 100);
  const vm = buildViewModel(status, state, {
    vertex: options.vertex,
    sort: options.sort,
    now: options.now ?? Date.now(),
    barWidth: widths.bar,
    barStyle: options.barStyle ?? 'ascii',
    ...(options.show !== undefined ? { show: options.show } : {}),
    ...(options.maxRows !== undefined ? { maxRows: options.maxRows } : {}),
    ...(options.previous ? { previous: options.previous } : {}),
  });
  if (options.detail !== undefined) {
    const pane = detailLines(options.detail, {
      columns: options.columns ?? 100,
      now: options.now ?? Date.now(),
      barStyle: options.barStyle ?? 'ascii',
    });
    return [...headerLines(vm), ...pane].map((l) => formatLine(l, color)).join('\n') + '\n';
  }
  const lines: Line[] = [...headerLines(vm), titleLine(vm), tableHeaderLine(widths)];
  if (vm.rows.length === 0) lines.push(emptyLine(vm));
  for (const row of vm.rows) lines.push(rowLine(row, widths));
  const more = moreLine(vm, false);
  if (more) lines.push(more);
  return lines.map((l) => formatLine(l, color)).join('\n') + '\n';
}
