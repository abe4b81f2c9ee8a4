/**
 * inspect answers "why": the refusals/s column, the blocked sort, row selection and the detail
 * pane (caps in the path, which binds, sparklines), in the pure layers and in the Ink app.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { VertexDetailResponse, VertexRefusals } from '../../src/api/types.js';
import { initialControlState, reduceKey } from '../../src/tui/controls.js';
import { detailLines, sparkline } from '../../src/tui/detail.js';
import { columnWidths, lineText, tableWidth } from '../../src/tui/layout.js';
import { renderPlainFrame } from '../../src/tui/plain.js';
import { buildRow, sortRows } from '../../src/tui/view-model.js';
import { makeState, makeStatus, makeVertex, NOW, sampleState } from './fixtures.js';
import { FakeDaemon, waitFor } from './helpers.js';

const { cleanup, render } = await import('ink-testing-library');
const { InspectApp } = await import('../../src/tui/app.js');

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

function refusals(
  per_s_1m: number,
  total: number,
  by_table: VertexRefusals['by_table'] = {},
): VertexRefusals {
  return { total, by_table, per_s_1m, per_s_5m: per_s_1m, last_at: new Date(NOW - 4_000).toISOString() };
}

/** A job at 5/6 refused 3.2/s by its own cap, in a folder at 5/8 and a subscription at 5/10. */
function jobDetail(): VertexDetailResponse {
  const sub = makeVertex('subscription', 'show-a/lax', {
    name: 'lax',
    show_name: 'alpha',
    cores: 5,
    max_cores: 10,
    refusals: refusals(0, 2, { subscription: 2 }),
  });
  const folder = makeVertex('folder', 'folder-1', {
    name: 'lighting',
    show_name: 'alpha',
    cores: 5,
    max_cores: 8,
    refusals: refusals(0, 0, { folder: 0, folder_gpus: 0 }),
  });
  const job = makeVertex('job', 'job-1', {
    name: 'alpha-shot010-comp',
    show_name: 'alpha',
    cores: 5,
    max_cores: 6,
    refusals: refusals(3.2, 40, { job: 40, job_gpus: 0 }),
  });
  const history = Array.from({ length: 120 }, (_, i) => ({
    at: new Date(NOW - (119 - i) * 5_000).toISOString(),
    utilization: i < 60 ? 0.5 : 5 / 6,
    refusals_per_s: i < 100 ? 0 : 3.2,
  }));
  return {
    vertex: job,
    path: [sub, folder, job],
    binding: { key: 'job-1', table: 'job', reason: 'refusing' },
    history,
    sample_ms: 5_000,
  };
}

/** The sample state with refusals on two jobs: job-2 refusing now, job-1 only in the past. */
function refusingState() {
  const state = sampleState();
  state.vertices = state.vertices.map((v) =>
    v.key === 'job-2'
      ? { ...v, refusals: refusals(3.2, 40, { job: 40, job_gpus: 0 }) }
      : v.key === 'job-1'
        ? { ...v, refusals: { ...refusals(0, 7, { job: 7, job_gpus: 0 }), per_s_5m: 0.1 } }
        : v,
  );
  return state;
}

afterEach(() => {
  cleanup();
});

describe('refusals in the table', () => {
  it('a row shows its refusals/s; the blocked sort puts the most refused first', () => {
    const rows = refusingState()
      .vertices.filter((v) => v.kind === 'job')
      .map((v) => buildRow(v));
    const byBlocked = sortRows(rows, 'blocked');
    expect(byBlocked.map((r) => [r.key, r.refusalsText])).toEqual([
      ['job-2', '3.2/s'],
      ['job-1', '0/s'],
      ['job-3', ''],
    ]);
    // A daemon without refusals (older version): zero, no text.
    expect(buildRow(makeVertex('job', 'x')).refusals).toBe(0);
  });

  it('--once prints the REF/S column and the blocked sort, and fits 80 columns', () => {
    const frame = renderPlainFrame(makeStatus(), refusingState(), {
      vertex: 'job',
      sort: 'blocked',
      now: NOW,
      columns: 80,
    });
    const lines = frame.trimEnd().split('\n');
    expect(lines[3]).toBe('jobs 3 rows · by blocked');
    expect(lines[4]).toContain('REF/S');
    expect(lines[5]).toMatch(/^bravo-shot/);
    expect(lines[5]).toContain('3.2/s');
    for (const line of lines.slice(4)) expect(Array.from(line).length).toBeLessThan(80);
    expect(tableWidth(columnWidths(80))).toBe(79);
  });
});

describe('sparkline', () => {
  it('is exactly the width, newest right, blanks for missing history, spikes kept when squeezed', () => {
    expect(sparkline([0, 0.5, 1], 5, { max: 1 })).toBe('  ▁▄█');
    expect(sparkline([null, 1], 2, { max: 1, style: 'ascii' })).toBe(' #');
    const squeezed = sparkline([...new Array<number>(99).fill(0), 10], 10);
    expect(squeezed).toHaveLength(10);
    expect(squeezed.at(-1)).toBe('█');
    expect(sparkline([0, 0], 4)).toBe('  ▁▁');
  });
});

describe('detail pane', () => {
  it('lists the subscription, folder and job caps with booked/cap, marks the binding one, and refusals per table', () => {
    const text = detailLines(jobDetail(), { columns: 80, now: NOW, barStyle: 'ascii' }).map(lineText);
    expect(text[0]).toBe('job alpha-shot010-comp (show alpha) · refused by job (alpha-shot010-comp)');
    expect(text[1]).toMatch(/^CAP +NAME +BOOKED\/CAP +UTIL +REF\/S +REFUSALS$/);
    expect(text[2]).toMatch(/^ {2}subscription +lax +5\/10 +50\.0% +0\/s +subscription 2$/);
    expect(text[3]).toMatch(/^ {2}folder +lighting +5\/8 +62\.5% +folder 0 · gpus 0$/);
    expect(text[4]).toMatch(/^▶ job +alpha-shot010-… +5\/6 +83\.3% +3\.2\/s +job 40 · gpus 0$/);
    expect(text[6]).toMatch(/^utilization 9m55s +[-=+*#_.:]+ now 83\.3%$/);
    expect(text[7]).toMatch(/^refusals\/s 9m55s +_+#+ max 3\.2\/s$/);
    expect(text[8]).toBe('last refusal 4s ago · 40 since the daemon started');
    for (const line of text) expect(Array.from(line).length).toBeLessThan(80);
  });

  it('--once --key prints the pane instead of the table', () => {
    const frame = renderPlainFrame(makeStatus(), makeState([]), {
      vertex: 'job',
      sort: 'utilization',
      now: NOW,
      columns: 80,
      detail: jobDetail(),
    });
    expect(frame).toContain('refused by job (alpha-shot010-comp)');
    expect(frame).not.toContain('BOOKED/CAP USE');
  });

  it('↑/↓ move the selection within the rows, Enter opens the selected row, Enter or Esc closes', () => {
    const rows = ['a', 'b', 'c'];
    let s = initialControlState();
    s = reduceKey(s, '', { upArrow: true }, rows);
    expect(s.selected).toBe(0);
    s = reduceKey(
      reduceKey(reduceKey(s, '', { downArrow: true }, rows), '', { downArrow: true }, rows),
      '',
      { downArrow: true },
      rows,
    );
    expect(s.selected).toBe(2);
    s = reduceKey(s, '', { return: true }, rows);
    expect(s.detail).toBe('c');
    // Keys that would change the list do nothing while the pane is open.
    expect(reduceKey(s, 'f', {}, rows)).toBe(s);
    expect(reduceKey(s, '', { escape: true }, rows).detail).toBeNull();
    expect(reduceKey(s, '', { return: true }, rows).detail).toBeNull();
    // b: the blocked sort, from the top.
    expect(reduceKey(initialControlState(), 'b', {}, rows)).toMatchObject({ sort: 'blocked', selected: 0 });
    // Enter on an empty table opens nothing.
    expect(reduceKey(initialControlState(), '', { return: true }, []).detail).toBeNull();
  });
});

describe('InspectApp "why"', () => {
  it('b sorts by blocked; ↓ Enter opens the detail of the second row, fetched for it; Esc returns', async () => {
    const daemon = new FakeDaemon();
    daemon.snapshot = { status: makeStatus(), state: refusingState() };
    const detailed = new FakeDaemon();
    const fetch = async (query: Parameters<FakeDaemon['fetch']>[0]) => {
      const snapshot = await daemon.fetch(query);
      return query.detail?.key === 'job-1' ? { ...snapshot, detail: jobDetail() } : snapshot;
    };
    const r = render(
      <InspectApp
        fetchSnapshot={fetch}
        intervalMs={25}
        now={() => NOW}
        daemon="http://127.0.0.1:7878"
        vertex="job"
      />,
    );
    const plain = () => (r.lastFrame() ?? '').replace(ANSI, '');
    await waitFor(() => plain().includes('bravo-shot020-fx'), { describe: plain });
    r.stdin.write('b');
    await waitFor(() => plain().includes('by blocked'), { describe: plain });
    const order = plain()
      .split('\n')
      .filter((l) => /shot0\d0/.test(l))
      .map((l) => l.split(' ')[0]);
    expect(order).toEqual(['bravo-shot020-fx', 'alpha-shot010-comp', expect.stringMatching(/shot030/)]);
    r.stdin.write('\u001b[B'); // ↓
    await waitFor(() => true);
    r.stdin.write('\r');
    await waitFor(() => plain().includes('refused by job'), { describe: plain });
    expect(daemon.queries.at(-1)).toMatchObject({ detail: { kind: 'job', key: 'job-1' } });
    expect(plain()).toContain('▶ job');
    expect(plain()).toContain('Enter/Esc back');
    r.stdin.write('\u001b');
    await waitFor(() => plain().includes('BOOKED/CAP USE'), { describe: plain });
    expect(detailed.calls).toBe(0);
  });
});
