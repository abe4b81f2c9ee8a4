import { describe, expect, it } from 'vitest';

import { columnWidths, fit, limitRows, tableWidth } from '../../src/tui/layout.js';
import { renderPlainFrame } from '../../src/tui/plain.js';
import { buildViewModel } from '../../src/tui/view-model.js';
import { makeState, makeStatus, makeVertex, NOW, sampleState } from './fixtures.js';

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

describe('renderPlainFrame', () => {
  it('prints the header, the selected kind and fixed-width rows, without colour by default', () => {
    const frame = renderPlainFrame(makeStatus(), sampleState(), {
      vertex: 'folder',
      sort: 'utilization',
      now: NOW,
    });
    expect(frame).toBe(
      [
        'cueacct 0.1.0 · ready yes · lock yes · listener yes · up 1h00m · epoch 42 · 2 managed shows',
        'recompute 4s ago in 120 ms · drift none',
        'in-flight 3 · bookings —/s (1000 total) · rejections —/s (10 total)',
        'folders 3 rows · by utilization',
        'NAME                    SHOW                  BOOKED/CAP USE               UTIL IN-FLT   REF/S',
        'lighting                alpha                    120/100 ##############  120.0%                OVER',
        'fx                      bravo                20/100 4/4g ##############  100.0%                FULL',
        'anim                    alpha                       10/∞ ..............       ∞',
        '',
      ].join('\n'),
    );
    expect(frame).not.toMatch(ANSI);
  });

  it('columns line up on every row (fixed widths), whatever the names', () => {
    const state = makeState([
      makeVertex('job', 'j1', { name: 'a', cores: 1, max_cores: 10 }),
      makeVertex('job', 'j2', {
        name: 'a-very-long-job-name-that-does-not-fit-the-column-at-all',
        cores: 9,
        max_cores: 10,
      }),
      makeVertex('job', 'j3', {
        name: 'b',
        show_name: 'a show with a long name',
        cores: 12345,
        max_cores: -1,
      }),
    ]);
    const frame = renderPlainFrame(makeStatus(), state, {
      vertex: 'job',
      sort: 'name',
      now: NOW,
      columns: 100,
    });
    const rows = frame.split('\n').slice(5, 8);
    expect(rows).toHaveLength(3);
    const w = columnWidths(100);
    const utilEnd = w.name + w.show + w.booked + w.bar + w.util + 4;
    for (const row of rows) {
      expect(row.slice(utilEnd - 1, utilEnd)).toMatch(/[%∞]/);
      expect(Array.from(row).length).toBeLessThan(100);
    }
    expect(frame).toContain('a-very-long-job-name-t…');
    expect(frame).toContain('a show with a…');
  });

  it('filters by show, sorts by name, and cuts to maxRows with a "more" line', () => {
    const frame = renderPlainFrame(makeStatus(), sampleState(), {
      vertex: 'job',
      sort: 'name',
      show: 'ALPHA',
      maxRows: 1,
      now: NOW,
    });
    expect(frame).toContain('jobs 1 of 2 rows (3 before filter) · show ~ "ALPHA" · by name');
    expect(frame).toContain('alpha-shot010-comp');
    expect(frame).not.toContain('alpha-shot030-lgt');
    expect(frame).not.toContain('bravo');
    expect(frame.trimEnd().split('\n').at(-1)).toBe('… 1 more');
  });

  it('says so when nothing matches', () => {
    const frame = renderPlainFrame(makeStatus(), sampleState(), {
      vertex: 'job',
      sort: 'name',
      show: 'zz',
      now: NOW,
    });
    expect(frame).toContain('no jobs of a show matching "zz"');
    const empty = renderPlainFrame(makeStatus(), makeState([]), { vertex: 'folder', sort: 'name', now: NOW });
    expect(empty).toContain('no folders in the store');
  });

  it('with color: ANSI yellow for warn, magenta for full, red for over; same text once stripped', () => {
    const opts = { vertex: 'subscription', sort: 'utilization', now: NOW } as const;
    const colored = renderPlainFrame(makeStatus(), sampleState(), { ...opts, color: true });
    const lines = colored.split('\n');
    expect(lines.find((l) => l.includes('bravo.lax'))).toContain('\u001b[33m');
    expect(lines.find((l) => l.includes('show-c/lax'))).toContain('\u001b[35m');
    const ok = lines.find((l) => l.includes('alpha.lax'));
    expect(ok).not.toContain('\u001b[31m');
    expect(ok).not.toContain('\u001b[33m');
    expect(colored.replace(ANSI, '')).toBe(renderPlainFrame(makeStatus(), sampleState(), opts));
  });

  it('shows daemon problems in the header: not ready, lock lost, listener down, failed recompute', () => {
    const status = makeStatus({ ready: false, lock_held: false });
    status.listener.connected = false;
    status.last_recompute = { ...status.last_recompute, ok: false, error: 'timeout' };
    const frame = renderPlainFrame(status, sampleState(), { vertex: 'job', sort: 'name', now: NOW });
    expect(frame).toContain('ready NO · lock NO · listener NO');
    expect(frame).toContain('recompute FAILED 4s ago in 120 ms: timeout');
  });

  it('rates when given the previous status', () => {
    const previous = makeStatus();
    const status = makeStatus({
      uptime_s: 3602,
      bookings: { applied: 1400, rejected: 30, not_managed: 0, lease_expired: 0 },
    });
    const frame = renderPlainFrame(status, sampleState(), {
      vertex: 'job',
      sort: 'name',
      now: NOW,
      previous: { status: previous, elapsedMs: 2000 },
    });
    expect(frame).toContain('bookings 200/s (1400 total) · rejections 10.0/s (30 total)');
  });

  it('unicode bars on request', () => {
    const frame = renderPlainFrame(makeStatus(), sampleState(), {
      vertex: 'subscription',
      sort: 'utilization',
      now: NOW,
      barStyle: 'unicode',
    });
    expect(frame).toContain('█████████████░');
  });
});

describe('layout', () => {
  it('fit truncates with an ellipsis or pads to the exact width', () => {
    expect(fit('abc', 5)).toBe('abc  ');
    expect(fit('abc', 5, 'right')).toBe('  abc');
    expect(fit('abcdef', 4)).toBe('abc…');
    expect(fit('abcd', 4)).toBe('abcd');
    expect(fit('a\tb\nc', 5)).toBe('a b c');
    expect(fit('x', 0)).toBe('');
    expect(Array.from(fit('∞∞∞∞∞∞', 3))).toHaveLength(3);
  });

  it('columnWidths fills the terminal minus one column, and shrinks on narrow terminals', () => {
    for (const cols of [80, 100, 120]) expect(tableWidth(columnWidths(cols))).toBe(cols - 1);
    expect(columnWidths(80).bar).toBeLessThan(columnWidths(120).bar);
    expect(columnWidths(400).name).toBe(48);
    expect(columnWidths(400).bar).toBe(20);
    expect(columnWidths(20).bar).toBe(5);
    expect(columnWidths(0)).toEqual(columnWidths(80));
  });

  it('limitRows keeps rows + "more" line within the budget', () => {
    const vertices = Array.from({ length: 10 }, (_, i) =>
      makeVertex('job', `j${i}`, { cores: i, max_cores: 10 }),
    );
    const vm = buildViewModel(makeStatus(), makeState(vertices), { vertex: 'job', sort: 'name', now: NOW });
    expect(limitRows(vm, 10)).toBe(vm);
    const cut = limitRows(vm, 5);
    expect(cut.rows).toHaveLength(4);
    expect(cut.hidden).toBe(6);
    expect(limitRows(vm, 1).rows).toHaveLength(1);
    expect(limitRows(vm, 0).rows).toHaveLength(1);
  });
});

describe('packaging: only app.tsx may load ink/react', () => {
  it('no other module of src/tui imports ink or react (directly or through a relative import)', async () => {
    const { readFile, readdir } = await import('node:fs/promises');
    const dir = new URL('../../src/tui/', import.meta.url);
    const files = (await readdir(dir)).filter((f) => /\.tsx?$/.test(f));
    expect(files).toContain('app.tsx');
    const importsOf = async (file: string): Promise<string[]> => {
      const src = await readFile(new URL(file, dir), 'utf8');
      // `… from 'x'`, `import 'x'` and `import('x')`.
      return [...src.matchAll(/(?:\bfrom\s+|\bimport\s*\(?\s*)'([^']+)'/g)].map((m) => m[1] ?? '');
    };
    for (const file of files.filter((f) => f !== 'app.tsx')) {
      expect(file.endsWith('.tsx'), `${file} uses JSX`).toBe(false);
      const seen = new Set<string>();
      const queue = [file];
      while (queue.length > 0) {
        const current = queue.pop() ?? '';
        if (seen.has(current)) continue;
        seen.add(current);
        for (const spec of await importsOf(current)) {
          expect(spec, `${file} → ${current} imports ${spec}`).not.toMatch(/^(ink|react)(\/|$)|ink-/);
          if (spec.startsWith('./')) queue.push(spec.slice(2).replace(/\.js$/, '.ts'));
        }
      }
    }
  });
});
