/**
 * Plain-text output of the operator commands: aligned tables and the few number formats they
 * share. No colour and no terminal control codes: the output goes to cron mail and pipes.
 */

export type Align = 'left' | 'right';

export interface Column<T> {
  header: string;
  value: (row: T) => string;
  align?: Align;
}

/** An aligned table: a header line and one line per row, columns two spaces apart. */
export function renderTable<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((row) => columns.map((column) => column.value(row)));
  const widths = columns.map((column, i) =>
    Math.max(column.header.length, ...cells.map((line) => line[i]!.length)),
  );
  const line = (values: readonly string[]) =>
    values
      .map((value, i) =>
        columns[i]!.align === 'right' ? value.padStart(widths[i]!) : value.padEnd(widths[i]!),
      )
      .join('  ')
      .trimEnd();
  return [line(columns.map((column) => column.header)), ...cells.map((values) => line(values))].join('\n');
}

/** A number with at most `decimals` decimals, trailing zeros dropped: 12, 12.5, 0.25. */
export function formatNumber(value: number, decimals = 2): string {
  const fixed = value.toFixed(decimals);
  return fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
}

/** A signed difference: +2, -0.5, 0. */
export function formatSigned(value: number, decimals = 2): string {
  const text = formatNumber(value, decimals);
  return value > 0 ? `+${text}` : text;
}

/** A duration: 850 µs, 12.3 ms, 4.20 s. */
export function formatMs(ms: number): string {
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1000) return `${formatNumber(ms, ms < 10 ? 2 : 1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/** A cap: `unlimited` for the negative sentinel and, for folder/job caps, for 0. */
export function formatCap(cap: number, zeroIsUnlimited: boolean): string {
  if (cap < 0 || (cap === 0 && zeroIsUnlimited)) return 'unlimited';
  return String(cap);
}

/** `0.8` → `80%`; null → `-`. */
export function formatPercent(ratio: number | null): string {
  return ratio === null ? '-' : `${Math.round(ratio * 100)}%`;
}

/** `1 subscription`, `3 jobs`. */
export function plural(n: number, singular: string, pluralForm = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : pluralForm}`;
}

/** Nearest-rank percentile of sorted values (p in 0..100); NaN for no values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** Round for JSON output (milliseconds, ratios): 3 decimals. */
export function round3(value: number): number {
  return Math.round(value * 1000) / 1000;
}
