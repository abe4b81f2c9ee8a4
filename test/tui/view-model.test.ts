import { describe, expect, it } from 'vitest';

import {
  buildHeader,
  buildRow,
  buildViewModel,
  computeRates,
  coreCapOf,
  describeFetchError,
  formatDrift,
  formatDuration,
  formatMillis,
  formatRate,
  formatUtilization,
  gpuCapOf,
  matchesShow,
  severityOf,
  sortRows,
  summarizeRecompute,
  totalDrift,
  utilizationBar,
  type RowModel,
} from '../../src/tui/view-model.js';
import { makeState, makeStatus, makeVertex, NOW, sampleState } from './fixtures.js';

describe('caps', () => {
  it('subscription burst: <= 0 is closed (0), never unlimited', () => {
    expect(coreCapOf({ kind: 'subscription', max_cores: 200 })).toBe(200);
    expect(coreCapOf({ kind: 'subscription', max_cores: 0 })).toBe(0);
    expect(coreCapOf({ kind: 'subscription', max_cores: -1 })).toBe(0);
  });

  it('folder/job caps: <= 0 is unlimited (null)', () => {
    for (const kind of ['folder', 'job'] as const) {
      expect(coreCapOf({ kind, max_cores: 20 })).toBe(20);
      expect(coreCapOf({ kind, max_cores: 0 })).toBeNull();
      expect(coreCapOf({ kind, max_cores: -1 })).toBeNull();
      expect(gpuCapOf({ kind, max_gpus: 4 })).toBe(4);
      expect(gpuCapOf({ kind, max_gpus: 0 })).toBeNull();
      expect(gpuCapOf({ kind, max_gpus: -1 })).toBeNull();
    }
  });

  it('subscriptions never enforce GPUs', () => {
    expect(gpuCapOf({ kind: 'subscription', max_gpus: 4 })).toBeNull();
  });
});

describe('severityOf', () => {
  it.each([
    [0, 100, 'ok'],
    [89, 100, 'ok'],
    [90, 100, 'warn'],
    [99, 100, 'warn'],
    [100, 100, 'full'],
    [101, 100, 'over'],
    [24, 24, 'full'],
    [25, 24, 'over'],
    [8, 9, 'ok'], // 88.9 %
  ] as const)('%i of %i', (used, cap, expected) => {
    expect(severityOf(used, cap)).toBe(expected);
  });

  it('uses exact integer thresholds (9 of 10 is warn, not a float miss)', () => {
    expect(severityOf(9, 10)).toBe('warn');
    expect(severityOf(27, 30)).toBe('warn');
    expect(severityOf(26, 30)).toBe('ok');
  });
});

describe('formatUtilization', () => {
  it('formats percentages, ∞ and closed', () => {
    expect(formatUtilization(0)).toBe('0.0%');
    expect(formatUtilization(0.955)).toBe('95.5%');
    expect(formatUtilization(1.2)).toBe('120.0%');
    expect(formatUtilization(25)).toBe('2500%');
    expect(formatUtilization(null)).toBe('∞');
    expect(formatUtilization(null, true)).toBe('closed');
  });
});

describe('utilizationBar', () => {
  it('always has exactly the requested width', () => {
    for (const u of [null, 0, 0.001, 0.3, 0.5, 0.97, 0.999, 1, 7]) {
      for (const w of [1, 5, 10, 17, 20]) {
        expect(Array.from(utilizationBar(u, w))).toHaveLength(w);
        expect(utilizationBar(u, w, { style: 'ascii' })).toHaveLength(w);
      }
    }
    expect(utilizationBar(0.5, 0)).toBe('');
  });

  it('fills in proportion; only at/over the cap is full; any use shows one cell', () => {
    expect(utilizationBar(0, 10, { style: 'ascii' })).toBe('----------');
    expect(utilizationBar(0.5, 10, { style: 'ascii' })).toBe('#####-----');
    expect(utilizationBar(0.01, 10, { style: 'ascii' })).toBe('#---------');
    expect(utilizationBar(0.99, 10, { style: 'ascii' })).toBe('#########-');
    expect(utilizationBar(1, 10, { style: 'ascii' })).toBe('##########');
    expect(utilizationBar(3, 10, { style: 'ascii' })).toBe('##########');
    expect(utilizationBar(0.5, 4)).toBe('██░░');
  });

  it('has distinct tracks for unlimited and closed', () => {
    expect(utilizationBar(null, 5, { style: 'ascii' })).toBe('.....');
    expect(utilizationBar(null, 5)).toBe('·····');
    expect(utilizationBar(null, 5, { closed: true, style: 'ascii' })).toBe('xxxxx');
  });
});

describe('buildRow', () => {
  it('uses name/show_name when present, else the ids', () => {
    const named = buildRow(makeVertex('job', 'job-1', { name: 'shot010', show_name: 'alpha' }));
    expect(named.name).toBe('shot010');
    expect(named.show).toBe('alpha');
    const bare = buildRow(makeVertex('job', 'job-2', { show: 'show-z' }));
    expect(bare.name).toBe('job-2');
    expect(bare.show).toBe('show-z');
    const sub = buildRow(makeVertex('subscription', 'show-x/lax'));
    expect(sub.name).toBe('show-x/lax');
    expect(sub.show).toBe('show-x');
  });

  it('falls back to managed show names for the show column, and to "—" with no show', () => {
    const names = new Map([['show-a', 'alpha']]);
    expect(buildRow(makeVertex('folder', 'f', { show: 'show-a' }), { showNames: names }).show).toBe('alpha');
    expect(buildRow(makeVertex('folder', 'f', { show: null })).show).toBe('—');
    expect(buildRow(makeVertex('folder', 'f', { name: '', show_name: '' })).name).toBe('f');
  });

  it('capped row: booked/cap, utilization, bar, severity', () => {
    const row = buildRow(makeVertex('folder', 'f', { cores: 92, max_cores: 100 }), {
      barWidth: 10,
      barStyle: 'ascii',
    });
    expect(row.bookedText).toBe('92/100');
    expect(row.utilization).toBeCloseTo(0.92);
    expect(row.utilizationText).toBe('92.0%');
    expect(row.bar).toBe('#########-');
    expect(row.severity).toBe('warn');
    expect(row.coreCap).toBe(100);
    expect(row.closed).toBe(false);
  });

  it('unlimited folder/job: cap ∞, no utilization, ok', () => {
    const row = buildRow(makeVertex('job', 'j', { cores: 500, max_cores: -1 }), {
      barWidth: 4,
      barStyle: 'ascii',
    });
    expect(row.coreCap).toBeNull();
    expect(row.bookedText).toBe('500/∞');
    expect(row.utilization).toBeNull();
    expect(row.utilizationText).toBe('∞');
    expect(row.bar).toBe('....');
    expect(row.severity).toBe('ok');
  });

  it('subscription with burst 0 is closed and at its cap', () => {
    const row = buildRow(makeVertex('subscription', 's/a', { cores: 0, max_cores: 0 }), {
      barWidth: 3,
      barStyle: 'ascii',
    });
    expect(row.closed).toBe(true);
    expect(row.coreCap).toBe(0);
    expect(row.bookedText).toBe('0/0');
    expect(row.utilizationText).toBe('closed');
    expect(row.utilization).toBeNull();
    expect(row.bar).toBe('xxx');
    // At its cap of 0 (FULL), not above it: only something still booked on it is over.
    expect(row.severity).toBe('full');
    expect(buildRow(makeVertex('subscription', 'show-c/lax', { cores: 2, max_cores: 0 })).severity).toBe(
      'over',
    );
  });

  it('exactly at the cap is full, above it over', () => {
    expect(buildRow(makeVertex('job', 'j', { cores: 24, max_cores: 24 })).severity).toBe('full');
    const over = buildRow(makeVertex('job', 'j', { cores: 12, max_cores: 10 }));
    expect(over.severity).toBe('over');
    expect(over.utilizationText).toBe('120.0%');
  });

  it('GPU caps count: the binding cap decides utilization and severity', () => {
    const row = buildRow(makeVertex('folder', 'f', { cores: 10, max_cores: 100, gpus: 4, max_gpus: 4 }));
    expect(row.bookedText).toBe('10/100 4/4g');
    expect(row.utilization).toBe(1);
    expect(row.severity).toBe('full');
    const gpuOnly = buildRow(makeVertex('job', 'j', { cores: 10, max_cores: -1, gpus: 9, max_gpus: 10 }));
    expect(gpuOnly.utilization).toBeCloseTo(0.9);
    expect(gpuOnly.severity).toBe('warn');
    expect(gpuOnly.bookedText).toBe('10/∞ 9/10g');
    // GPUs booked against no GPU cap are shown, without changing severity.
    const free = buildRow(makeVertex('job', 'j', { cores: 1, max_cores: 10, gpus: 2, max_gpus: -1 }));
    expect(free.bookedText).toBe('1/10 2/∞g');
    expect(free.severity).toBe('ok');
  });

  it('in-flight part: cores, plus GPUs when any, empty when none', () => {
    expect(buildRow(makeVertex('job', 'j')).inflightText).toBe('');
    expect(buildRow(makeVertex('job', 'j', { inflight_cores: 4 })).inflightText).toBe('4');
    expect(buildRow(makeVertex('job', 'j', { inflight_cores: 4, inflight_gpus: 1 })).inflightText).toBe(
      '4+1g',
    );
  });
});

function rows(...specs: [key: string, cores: number, cap: number, name?: string][]): RowModel[] {
  return specs.map(([key, cores, cap, name]) =>
    buildRow(makeVertex('job', key, { cores, max_cores: cap, name: name ?? null })),
  );
}

describe('sortRows', () => {
  it('by utilization: fullest first, unlimited last, ties by cores then name', () => {
    const input = rows(
      ['a', 1, 10],
      ['b', 9, 10],
      ['c', 100, -1],
      ['d', 20, 10],
      ['e', 5, 10],
      ['f', 2, 4],
      ['g', 3, -1],
    );
    expect(sortRows(input, 'utilization').map((r) => r.key)).toEqual(['d', 'b', 'e', 'f', 'a', 'c', 'g']);
  });

  it('by utilization: closed subscriptions sort as at/over their cap', () => {
    const subs = [
      buildRow(makeVertex('subscription', 's/1', { cores: 50, max_cores: 100 })),
      buildRow(makeVertex('subscription', 's/2', { cores: 0, max_cores: 0 })),
      buildRow(makeVertex('subscription', 's/3', { cores: 3, max_cores: 0 })),
      buildRow(makeVertex('subscription', 's/4', { cores: 150, max_cores: 100 })),
    ];
    expect(sortRows(subs, 'utilization').map((r) => r.key)).toEqual(['s/3', 's/4', 's/2', 's/1']);
  });

  it('by name: case-insensitive, ties by key; does not mutate the input', () => {
    const input = rows(
      ['k1', 1, 10, 'beta'],
      ['k2', 1, 10, 'Alpha'],
      ['k0', 1, 10, 'beta'],
      ['k3', 1, -1, 'gamma'],
    );
    const before = input.map((r) => r.key);
    expect(sortRows(input, 'name').map((r) => r.key)).toEqual(['k2', 'k0', 'k1', 'k3']);
    expect(input.map((r) => r.key)).toEqual(before);
  });
});

describe('matchesShow', () => {
  const row = { show: 'Alpha', showId: 'show-a1' };
  it('matches a case-insensitive substring of the show name or id', () => {
    expect(matchesShow(row, 'alp')).toBe(true);
    expect(matchesShow(row, 'ALPHA')).toBe(true);
    expect(matchesShow(row, 'a1')).toBe(true);
    expect(matchesShow(row, 'SHOW-A')).toBe(true);
    expect(matchesShow(row, 'bravo')).toBe(false);
  });

  it('an empty or blank filter matches everything, "—" placeholder never matches', () => {
    expect(matchesShow(row, '')).toBe(true);
    expect(matchesShow(row, '  ')).toBe(true);
    expect(matchesShow(row, undefined)).toBe(true);
    expect(matchesShow({ show: '—', showId: null }, '—')).toBe(false);
  });
});

describe('computeRates', () => {
  const prev = makeStatus({ bookings: { applied: 1000, rejected: 10, not_managed: 0, lease_expired: 0 } });
  const cur = makeStatus({
    uptime_s: 3602,
    bookings: { applied: 1500, rejected: 14, not_managed: 3, lease_expired: 0 },
  });

  it('per second since the previous frame', () => {
    expect(computeRates(prev, cur, 2000)).toEqual({ bookingsPerSec: 250, rejectionsPerSec: 2 });
    expect(computeRates(prev, cur, 500)).toEqual({ bookingsPerSec: 1000, rejectionsPerSec: 8 });
  });

  it('null without a previous frame or a positive elapsed time', () => {
    const none = { bookingsPerSec: null, rejectionsPerSec: null };
    expect(computeRates(null, cur, 1000)).toEqual(none);
    expect(computeRates(undefined, cur, 1000)).toEqual(none);
    expect(computeRates(prev, cur, 0)).toEqual(none);
    expect(computeRates(prev, cur, -5)).toEqual(none);
    expect(computeRates(prev, cur, null)).toEqual(none);
  });

  it('null after a daemon restart (counters or uptime went back)', () => {
    const restarted = makeStatus({
      uptime_s: 2,
      bookings: { applied: 5, rejected: 0, not_managed: 0, lease_expired: 0 },
    });
    expect(computeRates(prev, restarted, 1000)).toEqual({ bookingsPerSec: null, rejectionsPerSec: null });
    const lower = makeStatus({
      uptime_s: 4000,
      bookings: { applied: 900, rejected: 12, not_managed: 0, lease_expired: 0 },
    });
    expect(computeRates(prev, lower, 1000)).toEqual({ bookingsPerSec: null, rejectionsPerSec: 2 });
  });

  it('formatRate', () => {
    expect(formatRate(null)).toBe('—/s');
    expect(formatRate(0)).toBe('0.0/s');
    expect(formatRate(12.345)).toBe('12.3/s');
    expect(formatRate(12345.6)).toBe('12346/s');
  });
});

describe('durations', () => {
  it.each([
    [-5, '0s'],
    [0, '0s'],
    [999, '0s'],
    [42_000, '42s'],
    [245_000, '4m05s'],
    [3_600_000 * 3 + 60_000 * 12, '3h12m'],
    [86_400_000 * 2 + 3_600_000 * 4, '2d04h'],
  ])('formatDuration(%i) = %s', (ms, text) => expect(formatDuration(ms)).toBe(text));

  it('formatMillis', () => {
    expect(formatMillis(120.4)).toBe('120 ms');
    expect(formatMillis(9_999)).toBe('9999 ms');
    expect(formatMillis(75_000)).toBe('1m15s');
  });
});

describe('recompute summary', () => {
  it('sums the drift over kinds', () => {
    expect(totalDrift(null)).toBeNull();
    expect(
      totalDrift({
        subscription: { cores: 1, gpus: 0, keys: 1 },
        folder: { cores: 10, gpus: 2, keys: 2 },
        job: { cores: 3, gpus: 0, keys: 1 },
      }),
    ).toEqual({ cores: 14, gpus: 2, keys: 4 });
    expect(formatDrift(null)).toBe('drift —');
    expect(formatDrift({ cores: 0, gpus: 0, keys: 0 })).toBe('drift none');
    expect(formatDrift({ cores: 1, gpus: 0, keys: 1 })).toBe('drift 1 key (1 core)');
    expect(formatDrift({ cores: 14, gpus: 2, keys: 4 })).toBe('drift 4 keys (14 cores, 2 gpus)');
  });

  it('age, duration and drift of a good pass', () => {
    const s = summarizeRecompute(makeStatus(), NOW);
    expect(s.ageMs).toBe(4000);
    expect(s.durationMs).toBe(120);
    expect(s.severity).toBe('ok');
    expect(s.text).toBe('recompute 4s ago in 120 ms · drift none');
  });

  it('drift is a warning', () => {
    const status = makeStatus();
    status.last_recompute.drift = {
      subscription: { cores: 0, gpus: 0, keys: 0 },
      folder: { cores: 5, gpus: 0, keys: 1 },
      job: { cores: 5, gpus: 0, keys: 1 },
    };
    const s = summarizeRecompute(status, NOW);
    expect(s.severity).toBe('warn');
    expect(s.drift).toEqual({ cores: 10, gpus: 0, keys: 2 });
    expect(s.text).toContain('drift 2 keys (10 cores)');
  });

  it('a failed pass is shown with its error', () => {
    const status = makeStatus();
    status.last_recompute = { ...status.last_recompute, ok: false, error: 'connection lost', drift: null };
    const s = summarizeRecompute(status, NOW);
    expect(s.severity).toBe('over');
    expect(s.text).toBe('recompute FAILED 4s ago in 120 ms: connection lost');
  });

  it('never ran', () => {
    const status = makeStatus();
    status.last_recompute = { at: null, duration_ms: null, ok: null, error: null, drift: null };
    const s = summarizeRecompute(status, NOW);
    expect(s.ageMs).toBeNull();
    expect(s.text).toBe('recompute never');
    expect(s.severity).toBe('ok');
  });

  it('clock skew (a recompute "in the future") reads as 0s ago', () => {
    const status = makeStatus();
    status.last_recompute.at = new Date(NOW + 3000).toISOString();
    expect(summarizeRecompute(status, NOW).ageMs).toBe(0);
  });
});

describe('buildHeader', () => {
  it('carries the flags, counts and rates', () => {
    const prev = makeStatus();
    const cur = makeStatus({
      ready: false,
      lock_held: false,
      listener: { ...prev.listener, connected: false, reconnects: 2, dropped: 7 },
      deferred_shows: [{ id: 'show-z', error: 'boom' }],
      bookings: { applied: 1100, rejected: 15, not_managed: 0, lease_expired: 0 },
      uptime_s: 3601,
    });
    const h = buildHeader(cur, NOW, { status: prev, elapsedMs: 1000 });
    expect(h).toMatchObject({
      version: '0.1.0',
      uptimeText: '1h00m',
      ready: false,
      lockHeld: false,
      lockState: null,
      listenerConnected: false,
      listenerReconnects: 2,
      droppedNotifications: 7,
      epoch: 42,
      inflight: 3,
      managedShows: 2,
      deferredShows: 1,
      bookingsApplied: 1100,
      bookingsRejected: 15,
      rates: { bookingsPerSec: 100, rejectionsPerSec: 5 },
      bookingsRateText: '100/s',
      rejectionsRateText: '5.0/s',
    });
    expect(buildHeader(cur, NOW).rates).toEqual({ bookingsPerSec: null, rejectionsPerSec: null });
  });
});

describe('buildViewModel', () => {
  const status = makeStatus();

  it('selects one vertex kind and sorts it', () => {
    const vm = buildViewModel(status, sampleState(), { vertex: 'folder', sort: 'utilization', now: NOW });
    expect(vm.vertex).toBe('folder');
    expect(vm.rows.map((r) => r.key)).toEqual(['folder-1', 'folder-3', 'folder-2']);
    expect(vm.rows.every((r) => r.kind === 'folder')).toBe(true);
    expect(vm).toMatchObject({ matched: 3, ofKind: 3, hidden: 0, filter: '', daemonTruncated: false });
    expect(vm.counts).toEqual({ subscription: 3, folder: 3, job: 3 });
    const byName = buildViewModel(status, sampleState(), { vertex: 'folder', sort: 'name', now: NOW });
    expect(byName.rows.map((r) => r.name)).toEqual(['anim', 'fx', 'lighting']);
  });

  it('filters by show name or id, case-insensitively', () => {
    const byName = buildViewModel(status, sampleState(), {
      vertex: 'job',
      sort: 'name',
      show: ' BRA ',
      now: NOW,
    });
    expect(byName.filter).toBe('BRA');
    expect(byName.rows.map((r) => r.key)).toEqual(['job-2']);
    expect(byName).toMatchObject({ matched: 1, ofKind: 3 });
    const byId = buildViewModel(status, sampleState(), {
      vertex: 'job',
      sort: 'name',
      show: 'show-a',
      now: NOW,
    });
    expect(byId.rows.map((r) => r.key)).toEqual(['job-1', 'job-3']);
    const none = buildViewModel(status, sampleState(), {
      vertex: 'job',
      sort: 'name',
      show: 'zulu',
      now: NOW,
    });
    expect(none.rows).toEqual([]);
  });

  it('resolves show names from managed shows when the vertex has none', () => {
    const state = makeState([makeVertex('folder', 'f1', { show: 'show-b', show_name: null })]);
    const vm = buildViewModel(status, state, { vertex: 'folder', sort: 'name', show: 'bravo', now: NOW });
    expect(vm.rows.map((r) => r.show)).toEqual(['bravo']);
  });

  it('cuts to maxRows after sorting and counts the rest', () => {
    const vertices = Array.from({ length: 30 }, (_, i) =>
      makeVertex('job', `job-${String(i).padStart(2, '0')}`, { cores: i, max_cores: 30 }),
    );
    const vm = buildViewModel(status, makeState(vertices), {
      vertex: 'job',
      sort: 'utilization',
      now: NOW,
      maxRows: 5,
    });
    expect(vm.rows.map((r) => r.cores)).toEqual([29, 28, 27, 26, 25]);
    expect(vm).toMatchObject({ matched: 30, hidden: 25 });
  });

  it('flags an answer the daemon cut (total > rows sent)', () => {
    const vm = buildViewModel(status, makeState([makeVertex('job', 'j')], 500), {
      vertex: 'job',
      sort: 'name',
      now: NOW,
    });
    expect(vm.daemonTruncated).toBe(true);
  });

  it('passes the bar width and style through, and the previous status to the header', () => {
    const vm = buildViewModel(
      makeStatus({
        bookings: { applied: 1010, rejected: 10, not_managed: 0, lease_expired: 0 },
        uptime_s: 3601,
      }),
      sampleState(),
      {
        vertex: 'subscription',
        sort: 'utilization',
        now: NOW,
        barWidth: 8,
        barStyle: 'ascii',
        previous: { status, elapsedMs: 1000 },
      },
    );
    expect(vm.rows.every((r) => r.bar.length === 8)).toBe(true);
    expect(vm.rows.find((r) => r.key === 'show-a/lax')?.bar).toBe('####----');
    expect(vm.header.rates).toEqual({ bookingsPerSec: 10, rejectionsPerSec: 0 });
  });
});

describe('describeFetchError', () => {
  it('transport errors read "unreachable" with the code', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:7878'), { code: 'ECONNREFUSED' });
    expect(describeFetchError(err, 'http://127.0.0.1:7878')).toBe(
      'daemon at http://127.0.0.1:7878 unreachable: ECONNREFUSED — retrying',
    );
  });

  it('understands the CLI client message and its cause', () => {
    const cause = Object.assign(new Error('connect ENOENT /run/cueacct.sock'), { code: 'ENOENT' });
    const err = new Error('cannot reach daemon at unix:/run/cueacct.sock: ENOENT', { cause });
    expect(describeFetchError(err)).toBe('daemon at unix:/run/cueacct.sock unreachable: ENOENT — retrying');
  });

  it('other failures keep their message', () => {
    expect(describeFetchError(new Error('daemon at http://h:1 answered GET /v1/status with HTTP 503'))).toBe(
      'daemon at http://h:1 answered GET /v1/status with HTTP 503 — retrying',
    );
    expect(describeFetchError(new Error('bad JSON\nmore detail'), 'http://h:1')).toBe(
      'daemon at http://h:1: bad JSON — retrying',
    );
    expect(describeFetchError('weird')).toBe('daemon: weird — retrying');
  });
});
