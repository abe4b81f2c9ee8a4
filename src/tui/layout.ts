/**
 * The text layout of an `inspect` frame, shared by the Ink app and the plain `--once` frame so
 * both show the same information: lines made of segments, each with an optional tone that the
 * Ink components turn into colours and the plain renderer into ANSI codes (or nothing).
 *
 * Pure and Ink-free. Every table column has a fixed width for a given terminal width, so rows
 * never shift between refreshes.
 */
import type { VertexKind } from '../core/types.js';
import type { RowModel, Severity, ViewModel } from './view-model.js';

/** `ok`/`warn`/`over` colour by severity (green-ish/yellow/red), `dim` for secondary text, `accent` for the selection. */
export type Tone = Severity | 'dim' | 'accent' | 'good';

export interface Segment {
  text: string;
  tone?: Tone;
  bold?: boolean;
  inverse?: boolean;
}

export type Line = Segment[];

export interface ColumnWidths {
  name: number;
  show: number;
  booked: number;
  bar: number;
  util: number;
  inflight: number;
  /** Refusals per second over the last minute. */
  refusals: number;
  state: number;
}

/** One space between columns. */
export const COLUMN_GAP = ' ';
const FIXED = { show: 14, booked: 17, util: 7, inflight: 6, refusals: 7, state: 4 } as const;
const GAPS = 7;
const MIN_NAME = 8;
const MAX_NAME = 48;
const MIN_BAR = 5;
const MAX_BAR = 20;

/**
 * Column widths for a terminal `columns` wide. Lines use at most `columns - 1` characters (a
 * line that fills the last column makes some terminals wrap). Narrow terminals shrink the bar
 * and the name first.
 */
export function columnWidths(columns: number): ColumnWidths {
  const cols = Number.isFinite(columns) && columns > 0 ? Math.floor(columns) : 80;
  const available = cols - 1;
  // Below 100 columns the show and booked columns give room to the name (80×24 stays usable).
  const narrow = cols < 100;
  const show = narrow ? 10 : FIXED.show;
  const booked = narrow ? 14 : FIXED.booked;
  const fixed =
    show + booked + FIXED.util + FIXED.inflight + FIXED.refusals + FIXED.state + GAPS * COLUMN_GAP.length;
  const rest = Math.max(0, available - fixed);
  const bar = Math.min(MAX_BAR, Math.max(MIN_BAR, Math.floor(rest * 0.4)));
  const name = Math.min(MAX_NAME, Math.max(MIN_NAME, rest - bar));
  return {
    name,
    show,
    booked,
    bar,
    util: FIXED.util,
    inflight: FIXED.inflight,
    refusals: FIXED.refusals,
    state: FIXED.state,
  };
}

export function tableWidth(w: ColumnWidths): number {
  return (
    w.name + w.show + w.booked + w.bar + w.util + w.inflight + w.refusals + w.state + GAPS * COLUMN_GAP.length
  );
}

/** Truncate (with "…") or pad `text` to exactly `width` characters (code points). */
export function fit(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  if (width <= 0) return '';
  const chars = Array.from(text.replace(/[\r\n\t]/g, ' '));
  const cut = chars.length > width ? [...chars.slice(0, width - 1), '…'].join('') : chars.join('');
  const pad = ' '.repeat(Math.max(0, width - Array.from(cut).length));
  return align === 'left' ? cut + pad : pad + cut;
}

const KIND_TITLE: Record<VertexKind, string> = {
  subscription: 'subscriptions',
  folder: 'folders',
  job: 'jobs',
};
const KIND_KEY: Record<VertexKind, string> = { subscription: 's', folder: 'f', job: 'j' };
const KINDS: readonly VertexKind[] = ['subscription', 'folder', 'job'];

function flag(label: string, on: boolean): Segment[] {
  return [{ text: `${label} ` }, { text: on ? 'yes' : 'NO', tone: on ? 'good' : 'over', bold: !on }];
}

const SEP: Segment = { text: ' · ', tone: 'dim' };

/** The three header lines: daemon flags; last recompute; in-flight and booking rates. */
export function headerLines(vm: ViewModel, extra: { paused?: boolean } = {}): Line[] {
  const h = vm.header;
  const first: Line = [
    { text: `cueacct ${h.version}`, bold: true },
    SEP,
    ...flag('ready', h.ready),
    SEP,
    ...flag('lock', h.lockHeld),
    ...(h.lockState === null
      ? []
      : [{ text: ` (${h.lockState})`, tone: h.lockState === 'serving' ? 'dim' : 'warn' } as Segment]),
    SEP,
    ...flag('listener', h.listenerConnected),
    SEP,
    { text: `up ${h.uptimeText}` },
    SEP,
    { text: `epoch ${h.epoch}` },
    SEP,
    { text: `${h.managedShows} managed show${h.managedShows === 1 ? '' : 's'}` },
  ];
  if (h.deferredShows > 0) first.push(SEP, { text: `${h.deferredShows} deferred`, tone: 'warn' });
  if (extra.paused) first.push(SEP, { text: 'PAUSED', tone: 'warn', bold: true, inverse: true });

  const rc = h.recompute;
  const second: Line = [{ text: rc.text, ...(rc.severity === 'ok' ? {} : { tone: rc.severity }) }];

  const rejecting = h.rates.rejectionsPerSec !== null && h.rates.rejectionsPerSec > 0;
  const third: Line = [
    { text: `in-flight ${h.inflight}` },
    SEP,
    { text: `bookings ${h.bookingsRateText}` },
    { text: ` (${h.bookingsApplied} total)`, tone: 'dim' },
    SEP,
    { text: `rejections ${h.rejectionsRateText}`, ...(rejecting ? { tone: 'warn' as const } : {}) },
    { text: ` (${h.bookingsRejected} total)`, tone: 'dim' },
  ];
  if (h.droppedNotifications > 0)
    third.push(SEP, { text: `${h.droppedNotifications} bad notifications`, tone: 'warn' });
  if (h.listenerReconnects > 0)
    third.push(SEP, { text: `${h.listenerReconnects} listener reconnects`, tone: 'dim' });
  return [first, second, third];
}

/** `subscriptions 2 of 2 rows (340 before filter) · show ~ "abc" · by utilization`, or tabs for the three kinds. */
export function titleLine(vm: ViewModel, options: { tabs?: boolean } = {}): Line {
  const line: Line = [];
  if (options.tabs) {
    for (const kind of KINDS) {
      const label = `${KIND_KEY[kind]}:${KIND_TITLE[kind]}`;
      line.push(
        kind === vm.vertex
          ? { text: ` ${label} `, tone: 'accent', bold: true, inverse: true }
          : { text: ` ${label} `, tone: 'dim' },
      );
    }
    line.push({ text: ' ' });
  } else {
    line.push({ text: KIND_TITLE[vm.vertex], bold: true }, { text: ' ' });
  }
  const shown = vm.rows.length;
  const count =
    vm.filter !== '' || vm.hidden > 0
      ? `${shown} of ${vm.matched} rows${vm.filter !== '' ? ` (${vm.ofKind} before filter)` : ''}`
      : `${shown} row${shown === 1 ? '' : 's'}`;
  line.push({ text: count });
  if (vm.filter !== '') line.push(SEP, { text: `show ~ "${vm.filter}"`, tone: 'accent' });
  line.push(SEP, { text: `by ${vm.sort}` });
  if (vm.daemonTruncated) line.push(SEP, { text: 'daemon sent a partial list', tone: 'warn' });
  return line;
}

export function tableHeaderLine(w: ColumnWidths): Line {
  const text = [
    fit('NAME', w.name),
    fit('SHOW', w.show),
    fit('BOOKED/CAP', w.booked, 'right'),
    fit('USE', w.bar),
    fit('UTIL', w.util, 'right'),
    fit('IN-FLT', w.inflight, 'right'),
    fit('REF/S', w.refusals, 'right'),
    fit('', w.state),
  ].join(COLUMN_GAP);
  return [{ text: text.trimEnd(), bold: true, tone: 'dim' }];
}

/**
 * The textual severity marker of the last column (so severity survives without colour). A
 * closed subscription with nothing booked already reads "closed": no second marker.
 */
export function stateMarker(severity: Severity, closed = false): string {
  if (severity === 'full') return closed ? '' : 'FULL';
  return severity === 'over' ? 'OVER' : severity === 'warn' ? 'WARN' : '';
}

/** One table row; the bar, utilization and marker carry the row's severity tone. */
export function rowLine(row: RowModel, w: ColumnWidths, options: { selected?: boolean } = {}): Line {
  const tone = row.severity === 'ok' ? undefined : row.severity;
  const toned = (text: string): Segment => (tone ? { text, tone } : { text });
  const marker = stateMarker(row.severity, row.closed);
  const refusing = row.refusalsPerSec > 0;
  const line: Line = [
    toned(fit(row.name, w.name)),
    { text: COLUMN_GAP + fit(row.show, w.show) + COLUMN_GAP },
    toned(fit(row.bookedText, w.booked, 'right')),
    { text: COLUMN_GAP },
    toned(fit(row.bar, w.bar)),
    { text: COLUMN_GAP },
    toned(fit(row.utilizationText, w.util, 'right')),
    { text: COLUMN_GAP + fit(row.inflightText, w.inflight, 'right') + COLUMN_GAP },
    refusing
      ? { text: fit(row.refusalsText, w.refusals, 'right'), tone: 'warn', bold: true }
      : row.refusalsText === ''
        ? { text: fit('', w.refusals) }
        : { text: fit(row.refusalsText, w.refusals, 'right'), tone: 'dim' },
  ];
  if (marker) line.push({ text: COLUMN_GAP }, { text: fit(marker, w.state), tone: row.severity, bold: true });
  if (options.selected) line[0] = { ...line[0]!, inverse: true };
  return line;
}

/** Shown instead of rows when the table is empty. */
export function emptyLine(vm: ViewModel): Line {
  const what = KIND_TITLE[vm.vertex];
  return [
    {
      text: vm.filter !== '' ? `no ${what} of a show matching "${vm.filter}"` : `no ${what} in the store`,
      tone: 'dim',
    },
  ];
}

/** "… 12 more (enlarge the terminal or filter by show)" when rows were cut to fit. */
export function moreLine(vm: ViewModel, hint = true): Line | null {
  if (vm.hidden <= 0) return null;
  return [
    { text: `… ${vm.hidden} more${hint ? ' (enlarge the terminal or filter with /)' : ''}`, tone: 'dim' },
  ];
}

export function lineText(line: Line): string {
  return line.map((s) => s.text).join('');
}

/**
 * Cut the rows so that the rows plus the "… N more" line take at most `maxLines` lines (at
 * least one row is kept when there is any).
 */
export function limitRows(vm: ViewModel, maxLines: number): ViewModel {
  const budget = Math.max(1, Math.floor(maxLines));
  const total = vm.rows.length + vm.hidden;
  const visible = total <= budget ? total : Math.max(1, budget - 1);
  if (visible >= vm.rows.length) return vm;
  return { ...vm, rows: vm.rows.slice(0, visible), hidden: total - visible };
}
