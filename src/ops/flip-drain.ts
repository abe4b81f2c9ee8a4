/**
 * Phase one of `flip-show --to cuebot` (issue 11 item 6): the daemon stops taking bookings of
 * the show and waits until none is in flight, so the rewrite from `SUM(proc)` in the flip
 * transaction sees every proc the daemon ever admitted for it.
 *
 * "No daemon" rule: when nothing listens at the daemon address (ECONNREFUSED, or no socket
 * file), no booking can be in flight through it, and the flip proceeds without a drain. Any
 * other failure to talk to it (a timeout, a reset, a daemon that answered the drain and is then
 * unreachable before the commit) refuses the flip: the daemon may still be admitting bookings.
 */
import type { DaemonClient } from '../cli/daemon-client.js';
import { ExitCode } from '../cli/exit-codes.js';
import { CliError, problemError, unreachableError } from '../cli/errors.js';
import { formatMs, plural } from './format.js';

export type DrainReport =
  { daemon: string; waited_ms: number } | { daemon: string; skipped: 'no daemon listening' };

interface Show {
  id: string;
  name: string;
}

/** The HTTP answer gives the daemon this long beyond the drain itself. */
const ANSWER_SLACK_MS = 15_000;

/** Ask the daemon to drain the show; resolves when nothing of it is in flight. */
export async function drainForFlip(
  daemon: DaemonClient,
  show: Show,
  timeoutMs: number,
): Promise<DrainReport> {
  let response;
  try {
    response = await daemon.request<{ error?: string; inflight?: number; waited_ms?: number }>(
      'POST',
      '/v1/admin/drain-show',
      { body: { show: show.id, timeout_ms: Math.round(timeoutMs) }, timeoutMs: timeoutMs + ANSWER_SLACK_MS },
    );
  } catch (error) {
    if (nothingListens(error)) return { daemon: daemon.describe, skipped: 'no daemon listening' };
    throw error;
  }
  const body = response.body ?? {};
  if (response.status === 200) return { daemon: daemon.describe, waited_ms: body.waited_ms ?? 0 };
  if (response.status === 409 && body.error === 'drain_timeout') {
    throw problemError(
      `show ${show.name} still has ${plural(body.inflight ?? 0, 'booking')} in flight after ${formatMs(timeoutMs)}: ` +
        'not flipped; the drain is lifted and the show stays managed',
    );
  }
  throw problemError(
    `daemon at ${daemon.describe} answered the drain of show ${show.name} with HTTP ${response.status}` +
      `${body.error === undefined ? '' : `: ${body.error}`}: not flipped`,
  );
}

/**
 * Just before the flip commits (the show row locked): the daemon still holds the drain. A
 * daemon restarted since the drain has forgotten it and may have admitted bookings again.
 */
export async function assertStillDrained(daemon: DaemonClient, show: Show): Promise<void> {
  let status;
  try {
    status = await daemon.status();
  } catch (error) {
    if (error instanceof CliError && error.exitCode === ExitCode.UNREACHABLE) {
      throw unreachableError(
        `the daemon at ${daemon.describe} became unreachable after draining show ${show.name}: not flipped (rolled back)`,
        { cause: error },
      );
    }
    throw error;
  }
  const draining = (status.draining_shows ?? []) as { id: string }[];
  if (!draining.some((entry) => entry.id === show.id)) {
    throw problemError(
      `the daemon at ${daemon.describe} no longer holds the drain of show ${show.name} (restarted?): not flipped (rolled back)`,
    );
  }
}

/** Best effort after a failed flip; a warning line when the drain could not be lifted. */
export async function liftDrain(daemon: DaemonClient, show: Show): Promise<string | undefined> {
  try {
    await daemon.postJson('/v1/admin/undrain-show', { show: show.id });
    return undefined;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return `could not lift the drain of show ${show.name} (${message}); lift it with POST /v1/admin/undrain-show`;
  }
}

/** Nothing listens at the address: connection refused, or no socket file. */
function nothingListens(error: unknown): boolean {
  if (!(error instanceof CliError) || error.exitCode !== ExitCode.UNREACHABLE) return false;
  const code = (error.cause as { code?: unknown } | undefined)?.code;
  return code === 'ECONNREFUSED' || code === 'ENOENT';
}
