/**
 * The live `cueacct inspect` terminal UI (Ink). This is the ONLY module of the TUI that imports
 * `ink`/`react` at runtime: the command loads it with a dynamic `import()` so that other
 * commands (and `--once`) start without them.
 *
 * Data comes from an injected {@link FetchSnapshot}; the {@link Poller} calls it every
 * `intervalMs` (never overlapping), and everything shown is computed by the pure view model and
 * laid out by `layout.ts`, shared with the plain `--once` frame.
 */
// Must precede `ink`: see the module.
import './live-terminal.js';

import { Box, render, Text, useApp, useInput, useStdout } from 'ink';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';

import {
  initialControlState,
  queryChanged,
  reduceInput,
  type ControlState,
  type KeyPress,
} from './controls.js';
import {
  columnWidths,
  emptyLine,
  headerLines,
  limitRows,
  moreLine,
  rowLine,
  tableHeaderLine,
  titleLine,
  type ColumnWidths,
  type Line,
  type Tone,
} from './layout.js';
import { detailLines } from './detail.js';
import { Poller } from './poller.js';
import {
  buildViewModel,
  describeFetchError,
  formatDuration,
  type FetchSnapshot,
  type Snapshot,
  type SnapshotQuery,
  type SortOrder,
  type VertexKind,
  type ViewModel,
} from './view-model.js';

export const DEFAULT_INTERVAL_MS = 1000;
const DEFAULT_COLUMNS = 80;
const DEFAULT_ROWS = 24;
/** Lines around the table rows: 3 header, 1 status, 1 title, 1 column header, 1 footer, 1 spare. */
const CHROME_LINES = 8;

const TONE_COLOR: Partial<Record<Tone, string>> = {
  good: 'green',
  ok: 'green',
  warn: 'yellow',
  full: 'magenta',
  over: 'red',
  accent: 'cyan',
};

/** One laid-out line; never wraps (fixed height, no reflow between refreshes). */
export function SegmentLine({ line }: { line: Line }) {
  return (
    <Text wrap="truncate-end">
      {line.map((seg, i) => (
        <Text
          key={i}
          color={seg.tone ? TONE_COLOR[seg.tone] : undefined}
          dimColor={seg.tone === 'dim'}
          bold={seg.bold ?? false}
          inverse={seg.inverse ?? false}
        >
          {seg.text}
        </Text>
      ))}
    </Text>
  );
}

export function Header({ vm, paused }: { vm: ViewModel; paused: boolean }) {
  return (
    <Box flexDirection="column">
      {headerLines(vm, { paused }).map((line, i) => (
        <SegmentLine key={i} line={line} />
      ))}
    </Box>
  );
}

/** Title with the vertex tabs, column header, rows (bounded by `maxRows` lines) and a "… N more" line. */
export function VertexTable({
  vm,
  widths,
  maxRows,
  selected = -1,
}: {
  vm: ViewModel;
  widths: ColumnWidths;
  maxRows: number;
  /** Index of the highlighted row (-1: none). */
  selected?: number;
}) {
  const shown = limitRows(vm, maxRows);
  const more = moreLine(shown);
  return (
    <Box flexDirection="column">
      <SegmentLine line={titleLine(shown, { tabs: true })} />
      <SegmentLine line={tableHeaderLine(widths)} />
      {shown.rows.length === 0 ? <SegmentLine line={emptyLine(shown)} /> : null}
      {shown.rows.map((row, i) => (
        <SegmentLine key={row.key} line={rowLine(row, widths, { selected: i === selected })} />
      ))}
      {more ? <SegmentLine line={more} /> : null}
    </Box>
  );
}

export function Footer({
  typing,
  inputEnabled,
  detail = false,
}: {
  typing: string | null;
  inputEnabled: boolean;
  detail?: boolean;
}) {
  if (!inputEnabled) {
    return <Text dimColor>stdin is not a terminal: keys are disabled · Ctrl-C to quit</Text>;
  }
  if (typing !== null) {
    return (
      <Text wrap="truncate-end">
        <Text color="cyan">show filter: </Text>
        {typing}
        <Text inverse> </Text>
        <Text dimColor> Enter apply · Esc clear</Text>
      </Text>
    );
  }
  if (detail) {
    return (
      <Text dimColor wrap="truncate-end">
        Enter/Esc back to the list · p pause · q quit
      </Text>
    );
  }
  return (
    <Text dimColor wrap="truncate-end">
      s/f/j vertex · u/n/b sort · ↑↓ Enter why · / filter · p pause · q quit
    </Text>
  );
}

export interface InspectAppProps {
  /** Fetches status + state; called with the current view (a source may ignore it). */
  fetchSnapshot: FetchSnapshot;
  /** Refresh period; default 1000 ms. */
  intervalMs?: number;
  vertex?: VertexKind;
  sort?: SortOrder;
  /** Initial show filter. */
  show?: string;
  /** The daemon address, for messages ("daemon at … unreachable"). */
  daemon?: string;
  /** Keys on (stdin is a terminal); default true. */
  inputEnabled?: boolean;
  /** Wall clock in ms; default `Date.now`. */
  now?: () => number;
  /** Called once when the user quits (before Ink exits). */
  onQuit?: () => void;
}

interface Received {
  snapshot: Snapshot;
  at: number;
  previous: { status: Snapshot['status']; at: number } | null;
}

interface FetchFailure {
  message: string;
  since: number;
}

function useTerminalSize(): { columns: number; rows: number } {
  const { stdout } = useStdout();
  const read = useCallback(
    () => ({
      columns: stdout.columns > 0 ? stdout.columns : DEFAULT_COLUMNS,
      rows: stdout.rows > 0 ? stdout.rows : DEFAULT_ROWS,
    }),
    [stdout],
  );
  const [size, setSize] = useState(read);
  useEffect(() => {
    const onResize = (): void => setSize(read());
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout, read]);
  return size;
}

export function InspectApp(props: InspectAppProps) {
  const { exit } = useApp();
  const clock = props.now ?? Date.now;
  const intervalMs = props.intervalMs ?? DEFAULT_INTERVAL_MS;
  const inputEnabled = props.inputEnabled ?? true;

  const [controls, setControls] = useState<ControlState>(() =>
    initialControlState({
      ...(props.vertex ? { vertex: props.vertex } : {}),
      ...(props.sort ? { sort: props.sort } : {}),
      ...(props.show !== undefined ? { filter: props.show } : {}),
    }),
  );
  const [received, setReceived] = useState<Received | null>(null);
  const [failure, setFailure] = useState<FetchFailure | null>(null);
  const size = useTerminalSize();

  // Refs: the poller and the key handler must see the latest values synchronously.
  const controlsRef = useRef(controls);
  const fetchRef = useRef(props.fetchSnapshot);
  fetchRef.current = props.fetchSnapshot;
  const clockRef = useRef(clock);
  clockRef.current = clock;
  const daemonRef = useRef(props.daemon);
  daemonRef.current = props.daemon;
  const pollerRef = useRef<Poller<Snapshot> | null>(null);
  const rowKeysRef = useRef<string[]>([]);
  const quitRef = useRef({ onQuit: props.onQuit, exit });
  quitRef.current = { onQuit: props.onQuit, exit };

  useEffect(() => {
    const rateWindowMs = Math.min(intervalMs, 1000) / 2;
    const poller = new Poller<Snapshot>({
      intervalMs,
      fetch: () => {
        const c = controlsRef.current;
        const query: SnapshotQuery = { vertex: c.vertex, sort: c.sort };
        if (c.filter !== '') query.show = c.filter;
        if (c.detail !== null) query.detail = { kind: c.vertex, key: c.detail };
        return fetchRef.current(query);
      },
      onResult: (snapshot) => {
        const at = clockRef.current();
        setReceived((prev) => {
          // The rate baseline: the previous frame, unless it is too recent (a fetch forced by a
          // key press) to give a meaningful per-second figure; then keep the older baseline.
          let previous: Received['previous'] = null;
          if (prev)
            previous =
              at - prev.at >= rateWindowMs ? { status: prev.snapshot.status, at: prev.at } : prev.previous;
          return { snapshot, at, previous };
        });
        setFailure(null);
      },
      onError: (err) => {
        const message = describeFetchError(err, daemonRef.current);
        const at = clockRef.current();
        setFailure((prev) => ({ message, since: prev?.since ?? at }));
      },
    });
    pollerRef.current = poller;
    poller.setPaused(controlsRef.current.paused);
    poller.start();
    return () => {
      pollerRef.current = null;
      void poller.stop();
    };
  }, [intervalMs]);

  useInput(
    (input, key) => {
      const prev = controlsRef.current;
      const next = reduceInput(prev, input, key as KeyPress, rowKeysRef.current);
      if (next === prev) return;
      controlsRef.current = next;
      setControls(next);
      const poller = pollerRef.current;
      if (next.paused !== prev.paused) poller?.setPaused(next.paused);
      if (queryChanged(prev, next)) poller?.refreshNow();
      if (next.quit && !prev.quit) {
        poller?.setPaused(true);
        quitRef.current.onQuit?.();
        quitRef.current.exit();
      }
    },
    { isActive: inputEnabled },
  );

  const widths = useMemo(() => columnWidths(size.columns), [size.columns]);
  const vm = useMemo(() => {
    if (!received) return null;
    const { status, state } = received.snapshot;
    return buildViewModel(status, state, {
      vertex: controls.vertex,
      sort: controls.sort,
      show: controls.filter,
      now: clockRef.current(),
      barWidth: widths.bar,
      previous: received.previous
        ? { status: received.previous.status, elapsedMs: received.at - received.previous.at }
        : null,
    });
  }, [received, controls.vertex, controls.sort, controls.filter, widths.bar]);

  const maxRows = Math.max(1, size.rows - CHROME_LINES);
  const visible = vm ? limitRows(vm, maxRows).rows : [];
  rowKeysRef.current = visible.map((row) => row.key);
  const selected = Math.min(controls.selected, Math.max(0, visible.length - 1));
  const detail =
    controls.detail !== null &&
    received?.snapshot.detail &&
    received.snapshot.detail.vertex.key === controls.detail
      ? received.snapshot.detail
      : null;
  const status = statusLine({
    failure,
    received,
    paused: controls.paused,
    intervalMs,
    daemon: props.daemon,
    now: clockRef.current(),
  });

  return (
    <Box flexDirection="column" width={size.columns}>
      {vm ? (
        <Header vm={vm} paused={controls.paused} />
      ) : (
        <>
          <Text bold>cueacct inspect</Text>
          <Text> </Text>
          <Text> </Text>
        </>
      )}
      <SegmentLine line={status} />
      {vm && controls.detail !== null ? (
        <Box flexDirection="column">
          {detail ? (
            detailLines(detail, { columns: size.columns, now: clockRef.current() })
              .slice(0, maxRows + 2)
              .map((line, i) => <SegmentLine key={i} line={line} />)
          ) : (
            <Text dimColor>loading the detail of {controls.detail}…</Text>
          )}
        </Box>
      ) : vm ? (
        <VertexTable vm={vm} widths={widths} maxRows={maxRows} selected={inputEnabled ? selected : -1} />
      ) : null}
      <Footer typing={controls.typing} inputEnabled={inputEnabled} detail={controls.detail !== null} />
    </Box>
  );
}

function statusLine(s: {
  failure: FetchFailure | null;
  received: Received | null;
  paused: boolean;
  intervalMs: number;
  daemon: string | undefined;
  now: number;
}): Line {
  if (s.failure) {
    const line: Line = [{ text: `✗ ${s.failure.message}`, tone: 'over', bold: true }];
    if (s.received) {
      line.push({ text: ` · showing data from ${formatDuration(s.now - s.received.at)} ago`, tone: 'dim' });
    }
    return line;
  }
  if (!s.received) {
    return [{ text: `connecting to ${s.daemon ? `daemon at ${s.daemon}` : 'the daemon'}…`, tone: 'dim' }];
  }
  if (s.paused) return [{ text: 'paused: the data below is frozen · p to resume', tone: 'warn' }];
  const every = s.intervalMs % 1000 === 0 ? `${s.intervalMs / 1000}s` : `${s.intervalMs} ms`;
  return [{ text: `refreshing every ${every}`, tone: 'dim' }];
}

/** The app's view options, plus where to draw and how to stop. */
export interface RunInspectOptions extends Pick<
  InspectAppProps,
  'fetchSnapshot' | 'intervalMs' | 'vertex' | 'sort' | 'show' | 'daemon'
> {
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
  /** Aborting ends the app like `q` does. */
  signal?: AbortSignal;
  /** Route `console.*` output above the live frame (Ink's patchConsole); default true. */
  patchConsole?: boolean;
}

/**
 * Render the live view and resolve when the user quits (`q`, Ctrl-C), on SIGINT/SIGTERM or
 * when `signal` aborts. Without a terminal on stdin the keys are off; quit with a signal.
 */
export async function runInspect(options: RunInspectOptions): Promise<void> {
  const stdout = options.stdout ?? process.stdout;
  const stdin = options.stdin ?? process.stdin;
  const inputEnabled = Boolean(stdin.isTTY);
  if (options.signal?.aborted) return;

  const { stdout: _stdout, stdin: _stdin, signal, patchConsole, ...view } = options;
  const instance = render(<InspectApp {...view} inputEnabled={inputEnabled} />, {
    stdout,
    stdin,
    // Ctrl-C is a key like `q` (handled by the app), so the terminal is restored the same way.
    exitOnCtrlC: false,
    patchConsole: patchConsole ?? true,
  });
  const stop = (): void => instance.unmount();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  signal?.addEventListener('abort', stop, { once: true });
  try {
    await instance.waitUntilExit();
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    signal?.removeEventListener('abort', stop);
  }
}
