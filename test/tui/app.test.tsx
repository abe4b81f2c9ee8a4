import { EventEmitter } from 'node:events';

import { afterEach, describe, expect, it, vi } from 'vitest';

import { makeState, makeStatus, makeVertex, NOW } from './fixtures.js';
import { FakeDaemon, waitFor } from './helpers.js';

// Ink colours through chalk, which decides once, at import, whether to colour; the test's
// stdout is a pipe. Force colours before ink is loaded, so the warn/over colours are visible.
process.env.FORCE_COLOR = '1';
const { cleanup, render } = await import('ink-testing-library');
const { InspectApp, runInspect } = await import('../../src/tui/app.js');

const ESC = '\u001b';
const YELLOW = `${ESC}[33m`;
const RED = `${ESC}[31m`;
const MAGENTA = `${ESC}[35m`;
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

type Rendered = ReturnType<typeof render>;

function plain(r: Rendered): string {
  return (r.lastFrame() ?? '').replace(ANSI, '');
}

function lineWith(frame: string, needle: string): string {
  return frame.split('\n').find((l) => l.replace(ANSI, '').includes(needle)) ?? '';
}

function until(r: Rendered, predicate: (frame: string) => boolean, timeoutMs = 5_000): Promise<void> {
  return waitFor(() => predicate(plain(r)), { timeoutMs, describe: () => plain(r) });
}

function mount(
  daemon: FakeDaemon,
  props: { intervalMs?: number; onQuit?: () => void; show?: string } = {},
): Rendered {
  return render(
    <InspectApp
      fetchSnapshot={daemon.fetch}
      intervalMs={props.intervalMs ?? 25}
      now={() => NOW}
      daemon="http://127.0.0.1:7878"
      {...(props.onQuit ? { onQuit: props.onQuit } : {})}
      {...(props.show !== undefined ? { show: props.show } : {})}
    />,
  );
}

afterEach(() => {
  cleanup();
});

describe('InspectApp', () => {
  it('first frame: header and the subscription rows', async () => {
    const daemon = new FakeDaemon();
    const r = mount(daemon);
    await until(r, (f) => f.includes('alpha.lax'));
    const f = plain(r);
    expect(f).toContain('cueacct 0.1.0');
    expect(f).toContain('ready yes');
    expect(f).toContain('lock yes');
    expect(f).toContain('listener yes');
    expect(f).toContain('recompute 4s ago in 120 ms · drift none');
    expect(f).toContain('in-flight 3');
    expect(f).toContain('bookings');
    expect(f).toContain('rejections');
    expect(f).toContain('NAME');
    expect(f).toContain('BOOKED/CAP');
    for (const name of ['alpha.lax', 'bravo.lax', 'show-c/lax']) expect(f).toContain(name);
    expect(f).not.toContain('lighting');
    expect(f).toContain('q quit');
    expect(daemon.queries[0]).toEqual({ vertex: 'subscription', sort: 'utilization' });
  });

  it('shows bookings/s and rejections/s between frames', async () => {
    const daemon = new FakeDaemon();
    daemon.bookingsPerAnswer = 5;
    const r = mount(daemon);
    // now() is frozen, so the app measures 0 ms between frames: no rate yet...
    await until(r, (f) => f.includes('alpha.lax'));
    expect(plain(r)).toContain('bookings —/s');
    // ...while a moving clock gives one.
    r.unmount();
    let t = NOW;
    const r2 = render(
      <InspectApp
        fetchSnapshot={daemon.fetch}
        intervalMs={25}
        now={() => (t += 250)}
        daemon="http://127.0.0.1:7878"
      />,
    );
    await until(r2, (f) => /bookings \d+\.\d\/s/.test(f));
    expect(plain(r2)).toMatch(/rejections 0\.0\/s/);
  });

  it('f / j / s switch the vertex kind, and fetch at once for the new kind', async () => {
    const daemon = new FakeDaemon();
    const r = mount(daemon, { intervalMs: 60_000 });
    await until(r, (f) => f.includes('alpha.lax'));

    r.stdin.write('f');
    await until(r, (f) => f.includes('lighting'));
    expect(plain(r)).not.toContain('alpha.lax');
    for (const name of ['lighting', 'anim', 'fx']) expect(plain(r)).toContain(name);
    // Even with a one-minute interval the switch refetched, asking for folders.
    await waitFor(() => daemon.queries.some((q) => q.vertex === 'folder'));

    r.stdin.write('j');
    await until(r, (f) => f.includes('alpha-shot010-comp'));
    expect(plain(r)).not.toContain('lighting');

    r.stdin.write('s');
    await until(r, (f) => f.includes('alpha.lax'));
    expect(plain(r)).not.toContain('alpha-shot010-comp');
  });

  it('u / n change the order', async () => {
    const daemon = new FakeDaemon();
    const r = mount(daemon);
    await until(r, (f) => f.includes('alpha.lax'));
    r.stdin.write('j');
    await until(r, (f) => f.includes('alpha-shot010-comp'));
    const order = (f: string) =>
      ['alpha-shot010-comp', 'bravo-shot020-fx', 'alpha-shot030-lgt'].sort(
        (a, b) => f.indexOf(a) - f.indexOf(b),
      );

    // Utilization: 80 %, 20 %, unlimited last.
    expect(order(plain(r))).toEqual(['alpha-shot010-comp', 'bravo-shot020-fx', 'alpha-shot030-lgt']);
    r.stdin.write('n');
    await until(r, (f) => f.includes('by name'));
    expect(order(plain(r))).toEqual(['alpha-shot010-comp', 'alpha-shot030-lgt', 'bravo-shot020-fx']);
    r.stdin.write('u');
    await until(r, (f) => f.includes('by utilization'));
    expect(order(plain(r))).toEqual(['alpha-shot010-comp', 'bravo-shot020-fx', 'alpha-shot030-lgt']);
  });

  it('/ + typing + Enter filters by show; Esc clears', async () => {
    const daemon = new FakeDaemon();
    const r = mount(daemon);
    await until(r, (f) => f.includes('alpha.lax'));

    r.stdin.write('/');
    await until(r, (f) => f.includes('show filter:'));
    r.stdin.write('BRA');
    await until(r, (f) => f.includes('show filter: BRA'));
    // Typing does not filter yet, and letters are text, not commands.
    expect(plain(r)).toContain('alpha.lax');
    r.stdin.write('\r');
    await until(r, (f) => !f.includes('alpha.lax') && f.includes('bravo.lax'));
    expect(plain(r)).toContain('show ~ "BRA"');
    expect(plain(r)).toContain('1 of 1 rows (3 before filter)');
    await waitFor(() => daemon.queries.some((q) => q.show === 'BRA'));

    // The filter survives a switch of vertex kind.
    r.stdin.write('j');
    await until(r, (f) => f.includes('bravo-shot020-fx'));
    expect(plain(r)).not.toContain('alpha-shot010-comp');

    r.stdin.write('\u001b');
    await until(r, (f) => f.includes('alpha-shot010-comp'));
    expect(plain(r)).not.toContain('show ~');
  });

  it('a filter arriving in one chunk (fast typing, paste) applies too', async () => {
    const daemon = new FakeDaemon();
    const r = mount(daemon);
    await until(r, (f) => f.includes('alpha.lax'));
    r.stdin.write('/bravo\r');
    await until(r, (f) => f.includes('show ~ "bravo"') && !f.includes('alpha.lax'));
    expect(plain(r)).toContain('bravo.lax');
  });

  it('backspace edits the filter being typed; Esc while typing cancels it', async () => {
    const daemon = new FakeDaemon();
    const r = mount(daemon, { show: 'alpha' });
    await until(r, (f) => f.includes('alpha.lax'));
    expect(plain(r)).not.toContain('bravo.lax');
    r.stdin.write('/');
    r.stdin.write('brx');
    await until(r, (f) => f.includes('show filter: brx'));
    r.stdin.write('\u007f');
    await until(r, (f) => f.includes('show filter: br') && !f.includes('show filter: brx'));
    r.stdin.write('\u001b');
    await until(r, (f) => f.includes('bravo.lax') && f.includes('alpha.lax'));
    expect(plain(r)).not.toContain('show filter:');
  });

  it('p pauses: no fetch while paused; p again resumes at once', async () => {
    const daemon = new FakeDaemon();
    const intervalMs = 20;
    const r = mount(daemon, { intervalMs });
    await waitFor(() => daemon.calls >= 3);

    r.stdin.write('p');
    const atPause = daemon.calls;
    await until(r, (f) => f.includes('PAUSED'));
    expect(plain(r)).toContain('p to resume');
    // Negative check: over 15 intervals, during which an unpaused app fetches ~15 times,
    // no fetch starts.
    const observeUntil = Date.now() + 15 * intervalMs;
    await waitFor(() => Date.now() >= observeUntil || daemon.calls > atPause, { timeoutMs: 2_000 });
    expect(daemon.calls).toBe(atPause);

    r.stdin.write('p');
    await waitFor(() => daemon.calls > atPause);
    await until(r, (f) => !f.includes('PAUSED'));
    await waitFor(() => daemon.calls > atPause + 2);
  });

  it('an unreachable daemon shows one line and polling recovers by itself', async () => {
    const daemon = new FakeDaemon();
    daemon.up = false;
    const r = mount(daemon);
    const message = 'daemon at http://127.0.0.1:7878 unreachable: ECONNREFUSED — retrying';
    await until(r, (f) => f.includes(message));
    expect(
      plain(r)
        .split('\n')
        .filter((l) => l.includes('unreachable')),
    ).toHaveLength(1);
    // Keeps polling while down.
    const failed = daemon.calls;
    await waitFor(() => daemon.calls >= failed + 2);

    daemon.up = true;
    await until(r, (f) => f.includes('alpha.lax') && !f.includes('unreachable'));

    // Down again after data: the message, over the last data.
    daemon.up = false;
    await until(r, (f) => f.includes(message));
    expect(plain(r)).toContain('showing data from');
    expect(plain(r)).toContain('alpha.lax');
    daemon.up = true;
    await until(r, (f) => !f.includes('unreachable'));
  });

  it('colours warn rows yellow, full rows magenta and rows over their cap red, with WARN/FULL/OVER markers', async () => {
    const daemon = new FakeDaemon();
    const r = mount(daemon);
    await until(r, (f) => f.includes('alpha.lax'));
    const frame = r.lastFrame() ?? '';
    const warn = lineWith(frame, 'bravo.lax'); // 95 / 100
    const closed = lineWith(frame, 'show-c/lax'); // burst 0
    const ok = lineWith(frame, 'alpha.lax'); // 50 / 100
    expect(warn).toContain(YELLOW);
    expect(warn.replace(ANSI, '')).toContain('WARN');
    // Burst 0 with nothing booked: "closed" says it all, never "closed" and OVER.
    expect(closed).toContain(MAGENTA);
    expect(closed.replace(ANSI, '')).toContain('closed');
    expect(closed.replace(ANSI, '')).not.toMatch(/OVER|FULL/);
    expect(ok).not.toContain(YELLOW);
    expect(ok).not.toContain(RED);
    expect(ok.replace(ANSI, '')).not.toMatch(/WARN|OVER/);

    r.stdin.write('f');
    await until(r, (f) => f.includes('lighting'));
    const over = lineWith(r.lastFrame() ?? '', 'lighting'); // 120 / 100
    expect(over).toContain(RED);
    expect(over.replace(ANSI, '')).toContain('120.0%');
  });

  it('keeps the row count within the terminal height', async () => {
    const daemon = new FakeDaemon();
    daemon.snapshot = {
      status: makeStatus(),
      state: makeState(
        Array.from({ length: 60 }, (_, i) =>
          makeVertex('job', `job-${String(i).padStart(2, '0')}`, {
            name: `job ${i}`,
            cores: i,
            max_cores: 100,
          }),
        ),
      ),
    };
    const r = mount(daemon);
    await until(r, (f) => f.includes('no subscriptions'));
    r.stdin.write('j');
    await until(r, (f) => f.includes('job 59'));
    // ink-testing-library has no rows: the app assumes 24 and keeps one line spare.
    expect(plain(r).split('\n').length).toBeLessThanOrEqual(23);
    expect(plain(r)).toMatch(/… \d+ more/);
    const shown = plain(r)
      .split('\n')
      .filter((l) => l.startsWith('job '));
    expect(shown.length).toBeGreaterThan(5);
    expect(plain(r)).toContain(`${shown.length} of 60 rows`);
    // Every line fits the 100 columns of the test terminal.
    expect(
      Math.max(
        ...plain(r)
          .split('\n')
          .map((l) => Array.from(l).length),
      ),
    ).toBeLessThan(100);
  });

  it('q quits (onQuit, no more fetches); so does Ctrl-C', async () => {
    for (const key of ['q', '\u0003']) {
      const daemon = new FakeDaemon();
      const onQuit = vi.fn();
      const r = mount(daemon, { onQuit });
      await until(r, (f) => f.includes('alpha.lax'));
      r.stdin.write(key);
      await waitFor(() => onQuit.mock.calls.length === 1);
      const calls = daemon.calls;
      // The poller stops on the key press: over 10 intervals nothing is fetched.
      const observeUntil = Date.now() + 250;
      await waitFor(() => Date.now() >= observeUntil || daemon.calls > calls);
      expect(daemon.calls).toBe(calls);
    }
  });
});

/** Minimal TTY stand-ins for runInspect (the shape ink-testing-library uses). */
class FakeStdout extends EventEmitter {
  isTTY = true;
  columns = 100;
  rows = 30;
  output = '';
  write = (chunk: string): boolean => {
    this.output += chunk;
    return true;
  };
}

class FakeStdin extends EventEmitter {
  isTTY = true;
  private data: string | null = null;
  setEncoding(): void {}
  setRawMode(): void {}
  resume(): void {}
  pause(): void {}
  ref(): void {}
  unref(): void {}
  read = (): string | null => {
    const d = this.data;
    this.data = null;
    return d;
  };
  press(data: string): void {
    this.data = data;
    this.emit('readable');
    this.emit('data', data);
  }
}

describe('runInspect', () => {
  it('renders to the given stdout and resolves when the user presses q', async () => {
    const daemon = new FakeDaemon();
    const stdout = new FakeStdout();
    const stdin = new FakeStdin();
    const done = runInspect({
      fetchSnapshot: daemon.fetch,
      intervalMs: 20,
      vertex: 'folder',
      sort: 'name',
      stdout: stdout as unknown as NodeJS.WriteStream,
      stdin: stdin as unknown as NodeJS.ReadStream,
      patchConsole: false, // vitest's console cannot be patched
    });
    await waitFor(() => daemon.calls >= 2);
    expect(daemon.queries[0]).toEqual({ vertex: 'folder', sort: 'name' });
    stdin.press('q');
    await expect(done).resolves.toBeUndefined();
    expect(stdout.output.replace(ANSI, '')).toContain('lighting');
  });

  it('resolves when its signal aborts', async () => {
    const daemon = new FakeDaemon();
    const controller = new AbortController();
    const done = runInspect({
      fetchSnapshot: daemon.fetch,
      intervalMs: 20,
      vertex: 'job',
      sort: 'utilization',
      show: 'bravo',
      stdout: new FakeStdout() as unknown as NodeJS.WriteStream,
      stdin: new FakeStdin() as unknown as NodeJS.ReadStream,
      signal: controller.signal,
      patchConsole: false,
    });
    await waitFor(() => daemon.calls >= 1);
    expect(daemon.queries[0]).toEqual({ vertex: 'job', sort: 'utilization', show: 'bravo' });
    controller.abort();
    await expect(done).resolves.toBeUndefined();
  });
});
