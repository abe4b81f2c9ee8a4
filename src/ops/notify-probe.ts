/**
 * `cueacct notify-test`: an end-to-end check of the notification path.
 *
 * 1. Round trip through the database: LISTEN on a dedicated session, send NOTIFYs from the
 *    pool (each in its own transaction, as Cuebot sends them), time each until it comes back.
 *    `--count N` sends a burst (pipelined) and reports throughput and latency percentiles.
 * 2. The daemon: its listener must be connected and must have received what was sent. Probes
 *    go on the internal `cueacct_probe` channel, which the daemon listens to, counts in
 *    `/v1/status` `listener.applied.probe` and applies to nothing.
 *
 * `--release` / `--limit-change` send one real payload instead, validated by the wire
 * parser the daemon uses (a bad one is a usage error naming the field): a running daemon
 * applies it to its live counters or caps.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import type { StatusResponse } from '../api/types.js';
import type { DaemonClient } from '../cli/daemon-client.js';
import { CliError, usageError } from '../cli/errors.js';
import { ExitCode } from '../cli/exit-codes.js';
import { LIMIT_CHANGE_CHANNEL, RELEASE_CHANNEL, parseLimitChange, parseRelease } from '../core/wire.js';
import { PROBE_CHANNEL } from '../db/notify.js';
import { listenOn, sendNotify } from '../db/probe.js';
import { daemonClient, openDatabase } from './connect.js';
import { formatMs, formatNumber, percentile, plural, round3 } from './format.js';

/** At most this many NOTIFYs in flight at once during a burst. */
const WINDOW = 256;
const POLL_MS = 25;

type Counter = 'release' | 'limit_change' | 'probe';

interface Message {
  channel: string;
  payload: string;
  counter: Counter;
}

export interface NotifyTestOptions {
  databaseUrl: string | undefined;
  /** Undefined: do not check a daemon. */
  daemonUrl: string | undefined;
  token: string | undefined;
  count: number;
  /** Parsed JSON values of --release / --limit-change. */
  release: unknown;
  limitChange: unknown;
  timeoutMs: number;
}

export interface LatencySummary {
  min: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

export interface DaemonProbe {
  url: string;
  reachable: boolean;
  listener_connected: boolean | null;
  /** Notifications the daemon's listener counted since the test began (of `expected`). */
  received: number;
  expected: number;
  /** Payloads the daemon dropped as malformed since the test began. */
  dropped: number;
  /** From the first send until the daemon had counted them all; null when it did not. */
  wait_ms: number | null;
  error: string | null;
}

export interface NotifyTestResult {
  ok: boolean;
  /** 0, 1 (a probe failed: see `problems`) or 3 (the daemon is unreachable: `daemon.error`). */
  exit_code: 0 | 1 | 3;
  database: string;
  kind: 'probe' | 'real';
  messages: { channel: string; payload: string }[];
  sent: number;
  received: number;
  missing: number;
  latency_ms: LatencySummary | null;
  duration_ms: number;
  throughput_per_s: number | null;
  daemon: DaemonProbe | null;
  problems: string[];
}

/**
 * Validate `--release` / `--limit-change` with the daemon's own wire parser. Throws a usage
 * error (exit 2) naming the flag and the field; returns the messages to send.
 */
export function realMessages(release: unknown, limitChange: unknown): Message[] {
  const messages: Message[] = [];
  if (release !== undefined) {
    const payload = JSON.stringify(release);
    const parsed = parseRelease(payload);
    if (!parsed.ok) throw usageError(`--release is not a valid ${RELEASE_CHANNEL} payload: ${parsed.error}`);
    messages.push({ channel: RELEASE_CHANNEL, payload, counter: 'release' });
  }
  if (limitChange !== undefined) {
    const payload = JSON.stringify(limitChange);
    const parsed = parseLimitChange(payload);
    if (!parsed.ok) {
      throw usageError(`--limit-change is not a valid ${LIMIT_CHANGE_CHANNEL} payload: ${parsed.error}`);
    }
    messages.push({ channel: LIMIT_CHANGE_CHANNEL, payload, counter: 'limit_change' });
  }
  return messages;
}

function probeMessages(count: number): Message[] {
  const tag = randomBytes(4).toString('hex');
  return Array.from({ length: count }, (_, i) => ({
    channel: PROBE_CHANNEL,
    payload: `cueacct-probe-${tag}-${i}`,
    counter: 'probe' as const,
  }));
}

export async function notifyTest(
  options: NotifyTestOptions,
  warn: (text: string) => void,
): Promise<NotifyTestResult> {
  const real = realMessages(options.release, options.limitChange);
  if (real.length > 0 && options.count !== 1) {
    throw usageError(
      '--count cannot be combined with --release or --limit-change: a real payload is sent once',
    );
  }
  const messages = real.length > 0 ? real : probeMessages(options.count);
  for (const message of real) {
    warn(
      `warning: sending a real ${message.channel} payload: a running daemon applies it to its live ` +
        `${message.counter === 'release' ? 'counters' : 'caps'}`,
    );
  }

  const db = await openDatabase(options.databaseUrl, 'cueacct-notify-test');
  const daemon = options.daemonUrl === undefined ? undefined : daemonClient(options.daemonUrl, options.token);
  try {
    const before = daemon === undefined ? undefined : await daemonStatus(daemon);

    // Round trip.
    const sentAt = new Map<string, number>();
    const latencies: number[] = [];
    let lastArrival = 0;
    let arrived: () => void = () => undefined;
    const allArrived = new Promise<void>((resolve) => (arrived = resolve));
    const session = await listenOn(
      db.sql,
      [...new Set(messages.map((m) => m.channel))],
      (channel, payload) => {
        const key = `${channel}\u0000${payload}`;
        const start = sentAt.get(key);
        if (start === undefined) return;
        sentAt.delete(key);
        lastArrival = performance.now();
        latencies.push(lastArrival - start);
        if (latencies.length === messages.length) arrived();
      },
    );
    const started = performance.now();
    try {
      let next = 0;
      const sender = async () => {
        while (next < messages.length) {
          const message = messages[next++]!;
          sentAt.set(`${message.channel}\u0000${message.payload}`, performance.now());
          await sendNotify(db.sql, message.channel, message.payload);
        }
      };
      await Promise.all(Array.from({ length: Math.min(WINDOW, messages.length) }, sender));
      const remaining = Math.max(0, options.timeoutMs - (performance.now() - started));
      const timeout = new AbortController();
      await Promise.race([
        allArrived,
        sleep(remaining, undefined, { signal: timeout.signal }).catch(() => undefined),
      ]);
      timeout.abort();
    } finally {
      await session.close();
    }
    const received = latencies.length;
    const duration = (received > 0 ? lastArrival : performance.now()) - started;
    latencies.sort((a, b) => a - b);

    const result: NotifyTestResult = {
      ok: true,
      exit_code: 0,
      database: db.describe,
      kind: real.length > 0 ? 'real' : 'probe',
      messages: messages.length <= 10 ? messages.map(({ channel, payload }) => ({ channel, payload })) : [],
      sent: messages.length,
      received,
      missing: messages.length - received,
      latency_ms: received === 0 ? null : summarize(latencies),
      duration_ms: round3(duration),
      throughput_per_s: received > 1 && duration > 0 ? Math.round((received / duration) * 1000) : null,
      daemon: null,
      problems: [],
    };
    if (result.missing > 0) {
      result.problems.push(
        `${plural(result.missing, 'notification')} of ${messages.length} did not come back within ${formatMs(options.timeoutMs)}`,
      );
    }

    // The daemon.
    if (daemon !== undefined && before !== undefined) {
      result.daemon = await checkDaemon(daemon, before, messages, started, options.timeoutMs);
      // Unreachable: not a problem found but exit 3, reported by the command as its error line.
      if (!result.daemon.reachable) {
        // nothing to add
      } else if (result.daemon.listener_connected === false) {
        result.problems.push(`the daemon's listener is not connected (see /v1/status and its log)`);
      } else if (result.daemon.dropped > 0) {
        result.problems.push(`the daemon dropped ${plural(result.daemon.dropped, 'payload')} as malformed`);
      } else if (result.daemon.received < result.daemon.expected) {
        result.problems.push(
          `the daemon's listener received ${result.daemon.received} of ${result.daemon.expected} within ${formatMs(options.timeoutMs)}`,
        );
      }
    }
    result.ok = result.problems.length === 0;
    result.exit_code = result.daemon !== null && !result.daemon.reachable ? 3 : result.ok ? 0 : 1;
    return result;
  } finally {
    daemon?.close();
    await db.close();
  }
}

type StatusOrUnreachable = { status: StatusResponse } | { unreachable: string };

async function daemonStatus(daemon: DaemonClient): Promise<StatusOrUnreachable> {
  try {
    return { status: (await daemon.status()) as unknown as StatusResponse };
  } catch (error) {
    if (error instanceof CliError && error.exitCode === ExitCode.UNREACHABLE)
      return { unreachable: error.message };
    throw error;
  }
}

function counted(status: StatusResponse, counter: Counter): number {
  return status.listener?.applied?.[counter] ?? 0;
}

async function checkDaemon(
  daemon: DaemonClient,
  before: StatusOrUnreachable,
  messages: Message[],
  started: number,
  timeoutMs: number,
): Promise<DaemonProbe> {
  const probe: DaemonProbe = {
    url: daemon.describe,
    reachable: 'status' in before,
    listener_connected: null,
    received: 0,
    expected: messages.length,
    dropped: 0,
    wait_ms: null,
    error: 'unreachable' in before ? before.unreachable : null,
  };
  if (!('status' in before)) return probe;
  const counters = [...new Set(messages.map((m) => m.counter))];
  const base = new Map(counters.map((c) => [c, counted(before.status, c)]));
  const baseDropped = before.status.listener?.dropped ?? 0;
  probe.listener_connected = before.status.listener?.connected ?? null;
  for (;;) {
    const now = await daemonStatus(daemon);
    if (!('status' in now)) {
      probe.reachable = false;
      probe.error = now.unreachable;
      return probe;
    }
    const status = now.status;
    probe.listener_connected = status.listener?.connected ?? null;
    probe.received = counters.reduce((sum, c) => sum + (counted(status, c) - base.get(c)!), 0);
    probe.received = Math.min(probe.received, probe.expected);
    probe.dropped = (status.listener?.dropped ?? 0) - baseDropped;
    if (probe.received >= probe.expected) {
      probe.wait_ms = round3(performance.now() - started);
      return probe;
    }
    if (probe.listener_connected === false || probe.dropped > 0) return probe;
    if (performance.now() - started >= timeoutMs) return probe;
    await sleep(POLL_MS);
  }
}

function summarize(sorted: number[]): LatencySummary {
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    min: round3(sorted[0]!),
    p50: round3(percentile(sorted, 50)),
    p99: round3(percentile(sorted, 99)),
    max: round3(sorted[sorted.length - 1]!),
    mean: round3(sum / sorted.length),
  };
}

// ---- text ---------------------------------------------------------------------------------

export function renderNotifyTest(result: NotifyTestResult): string {
  const lines: string[] = [];
  const l = result.latency_ms;
  if (result.kind === 'real') {
    for (const message of result.messages) lines.push(`Sent ${message.channel} ${message.payload}`);
  }
  lines.push(`Database: ${result.database}`);
  if (result.sent === 1) {
    lines.push(
      l === null ? 'Round trip: the notification did not come back.' : `Round trip: ${formatMs(l.p50)}.`,
    );
  } else {
    lines.push(
      `Round trip: ${result.received} of ${plural(result.sent, 'notification')} back in ${formatMs(result.duration_ms)}` +
        (result.throughput_per_s === null ? '' : ` (${formatNumber(result.throughput_per_s, 0)}/s)`) +
        (l === null
          ? '.'
          : `; latency p50 ${formatMs(l.p50)}, p99 ${formatMs(l.p99)}, max ${formatMs(l.max)}.`),
    );
  }
  const d = result.daemon;
  if (d !== null) {
    if (!d.reachable) lines.push(`Daemon: ${d.url} not reachable.`);
    else {
      const listener = d.listener_connected === false ? 'listener NOT connected' : 'listener connected';
      const what = result.kind === 'real' ? 'the payload' : d.expected === 1 ? 'the probe' : 'the probes';
      const seen =
        d.received >= d.expected
          ? `it received ${what}${d.expected > 1 ? ` (${d.received} of ${d.expected})` : ''}` +
            (d.wait_ms === null ? '' : ` within ${formatMs(d.wait_ms)}`)
          : `it received ${d.received} of ${d.expected}`;
      lines.push(`Daemon: ${d.url}, ${listener}; ${seen}.`);
    }
  }
  for (const problem of result.problems) lines.push(`problem: ${problem}`);
  return lines.join('\n');
}
