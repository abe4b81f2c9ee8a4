/**
 * `cueacct flip-show`: hand a show's accounting to the scheduler (the daemon enforces it) or
 * back to Cuebot.
 *
 * Before anything changes it shows the show's current usage versus caps — the flip seed the
 * daemon will load (`seedStore`, the daemon's own) — and what will change. The flip is one
 * transaction: the show row is locked, and for `--to cuebot` the show's PG accounting tables
 * are rewritten from `SUM(proc)` first (so Cuebot resumes on exact numbers), then
 * `b_scheduler_managed` is set with `acct_managed_change` (`setShowManaged`) so a running
 * daemon refreshes its managed set at once. `--wait` polls the daemon until it reports the
 * show published (or removed).
 *
 * `--to cuebot` is two-phase (flip-drain.ts): the daemon first drains the show (no new
 * bookings, none in flight, bounded by `--timeout`), and the transaction commits only while
 * the daemon still holds that drain. A drain that times out refuses the flip (exit 1).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Sql } from 'postgres';

import type { StatusResponse } from '../api/types.js';
import type { DaemonClient } from '../cli/daemon-client.js';
import { problemError, usageError } from '../cli/errors.js';
import { auditAccountingTables, lockShow } from '../db/audit-queries.js';
import { setShowManaged } from '../db/notify.js';
import { findShow } from '../db/queries.js';
import { ACCOUNTING_TABLES, rewriteAccountingTablesIn, type RewriteReport } from '../db/rewrite.js';
import { daemonClient, openDatabase } from './connect.js';
import { assertStillDrained, drainForFlip, liftDrain, type DrainReport } from './flip-drain.js';
import { formatMs, plural, round3 } from './format.js';
import { unknownShow } from './seed.js';
import { renderVertexTables, runSeed, type SeedReport } from './seed-report.js';

export type Owner = 'scheduler' | 'cuebot';

export interface FlipOptions {
  databaseUrl: string | undefined;
  /** Name or id. */
  show: string;
  to: Owner;
  dryRun: boolean;
  /** Skip the confirmation. */
  yes: boolean;
  wait: boolean;
  timeoutMs: number;
  daemonUrl: string;
  token: string | undefined;
  multiplier: number;
}

export interface FlipIo {
  /** Print progress text (not called in --json mode). */
  print(text: string): void;
  /** Ask a yes/no question; undefined when no terminal can answer. */
  confirm(question: string): Promise<boolean | undefined>;
}

export interface FlipResult {
  show: { id: string; name: string };
  from: Owner;
  to: Owner;
  dry_run: boolean;
  /** Whether this run changed the show's owner. */
  changed: boolean;
  /** The show's usage versus caps: the flip seed the daemon loads. */
  usage: SeedReport;
  /** PG accounting rows of the show that differ from SUM(proc) (what `--to cuebot` rewrites). */
  pending_rewrite: Record<string, number> | null;
  /** Rows rewritten in the flip transaction (`--to cuebot`). */
  rewritten: RewriteReport | null;
  /** Duration of the flip transaction. */
  flip_ms: number | null;
  /** `--to cuebot`: the daemon's drain of the show before the flip (or why there was none). */
  drain: DrainReport | null;
  /** `--wait`: how long until the daemon reported the show published (or removed). */
  wait: { daemon: string; ms: number } | null;
}

const POLL_MS = 50;

export async function flipShow(options: FlipOptions, io: FlipIo | undefined): Promise<FlipResult> {
  const db = await openDatabase(options.databaseUrl, 'cueacct-flip-show');
  const daemon = options.wait ? daemonClient(options.daemonUrl, options.token) : undefined;
  try {
    const show = await findShow(db.sql, options.show);
    if (show === undefined) throw unknownShow(options.show);
    const from: Owner = show.managed ? 'scheduler' : 'cuebot';
    const usage = await runSeed(db.sql, [show], options.multiplier, 'show');
    const pending = options.to === 'cuebot' ? await pendingRewrite(db.sql, show.id) : null;
    const result: FlipResult = {
      show: { id: show.id, name: show.name },
      from,
      to: options.to,
      dry_run: options.dryRun,
      changed: false,
      usage,
      pending_rewrite: pending,
      rewritten: null,
      flip_ms: null,
      drain: null,
      wait: null,
    };
    io?.print(renderPlan(result));
    if (from === options.to) {
      io?.print(`Show ${show.name} is already owned by ${options.to}: nothing to change.`);
    } else if (options.dryRun) {
      io?.print('Dry run: nothing changed.');
      return result;
    } else {
      if (!options.yes) await confirmOrRefuse(io, show.name, options.to);
      // Check the daemon answers before changing anything we would then wait for.
      if (daemon !== undefined) await daemon.status();
      const drainer =
        options.to === 'cuebot' ? (daemon ?? daemonClient(options.daemonUrl, options.token)) : undefined;
      let drained = false;
      if (drainer !== undefined) {
        result.drain = await drainForFlip(drainer, show, options.timeoutMs);
        drained = 'waited_ms' in result.drain;
        io?.print(renderDrain(result.drain, show.name));
      }
      const started = performance.now();
      let flipped: Awaited<ReturnType<typeof executeFlip>>;
      try {
        flipped = await executeFlip(
          db.sql,
          show.id,
          options.to,
          drained ? () => assertStillDrained(drainer!, show) : undefined,
        );
      } catch (error) {
        const warning = drained ? await liftDrain(drainer!, show) : undefined;
        if (warning !== undefined && error instanceof Error) error.message += `; ${warning}`;
        throw error;
      } finally {
        if (drainer !== daemon) drainer?.close();
      }
      // Already flipped by someone else: the daemon will not remove the show, so lift it here.
      if (drained && !flipped.changed) await liftDrain(drainer!, show);
      result.flip_ms = round3(performance.now() - started);
      result.changed = flipped.changed;
      result.rewritten = flipped.rewritten;
      io?.print(renderFlipped(result));
    }
    if (daemon !== undefined && !options.dryRun) {
      const ms = await waitForDaemon(daemon, show.id, show.name, options.to, options.timeoutMs);
      result.wait = { daemon: daemon.describe, ms: round3(ms) };
      io?.print(
        `The daemon at ${daemon.describe} ${options.to === 'scheduler' ? 'published' : 'removed'} ` +
          `show ${show.name} after ${formatMs(ms)}.`,
      );
    }
    return result;
  } finally {
    daemon?.close();
    await db.close();
  }
}

/** Rows of the show's accounting tables that differ from SUM(proc), per table. */
async function pendingRewrite(sql: Sql, show: string): Promise<Record<string, number>> {
  const audit = await auditAccountingTables(sql, { kind: 'show', show });
  const counts: Record<string, number> = {};
  for (const table of ACCOUNTING_TABLES) counts[table] = 0;
  for (const row of audit.rows) counts[row.table]!++;
  return counts;
}

/** One transaction: lock the show, (to cuebot) rewrite its PG tables, set the flag + notify. */
export async function executeFlip(
  sql: Sql,
  show: string,
  to: Owner,
  beforeCommit?: () => Promise<void>,
): Promise<{ changed: boolean; rewritten: RewriteReport | null }> {
  const managed = to === 'scheduler';
  try {
    return await flipTransaction(sql, show, managed, beforeCommit);
  } catch (error) {
    // A statement failed (a trigger, a constraint): the transaction rolled back as a whole.
    // (A lost connection is not reported this way: whether the commit happened is unknown.)
    if (error instanceof Error && error.name === 'PostgresError') {
      throw problemError(`the flip failed and was rolled back, nothing changed: ${error.message}`, {
        cause: error,
      });
    }
    throw error;
  }
}

async function flipTransaction(
  sql: Sql,
  show: string,
  managed: boolean,
  beforeCommit: (() => Promise<void>) | undefined,
): Promise<{ changed: boolean; rewritten: RewriteReport | null }> {
  return (await sql.begin(async (tx) => {
    const q = tx as unknown as Sql;
    const current = await lockShow(q, show);
    if (current === undefined) throw problemError('the show was deleted while flipping it');
    if (current === managed) return { changed: false, rewritten: null };
    const rewritten = managed ? null : await rewriteAccountingTablesIn(q, { kind: 'show', show });
    await setShowManaged(q, show, managed);
    // Throwing here rolls the whole flip back.
    await beforeCommit?.();
    return { changed: true, rewritten };
  })) as { changed: boolean; rewritten: RewriteReport | null };
}

async function confirmOrRefuse(io: FlipIo | undefined, name: string, to: Owner): Promise<void> {
  const answer = await io?.confirm(`Flip show ${name} to ${to}? [y/N] `);
  if (answer === undefined) {
    throw usageError('no terminal to confirm the flip on: pass --yes (or --dry-run to only look)');
  }
  if (!answer) throw problemError('flip cancelled: nothing changed');
}

/** Poll the daemon until its managed set agrees with `to`; the time it took, in ms. */
export async function waitForDaemon(
  daemon: DaemonClient,
  show: string,
  name: string,
  to: Owner,
  timeoutMs: number,
): Promise<number> {
  const started = performance.now();
  let last: StatusResponse | undefined;
  for (;;) {
    last = (await daemon.status()) as unknown as StatusResponse;
    const published = last.managed_shows.some((s) => s.id === show);
    if (published === (to === 'scheduler')) return performance.now() - started;
    if (performance.now() - started >= timeoutMs) break;
    await sleep(POLL_MS);
  }
  const deferred = last?.deferred_shows?.find((s) => s.id === show);
  throw problemError(
    `the daemon at ${daemon.describe} did not ${to === 'scheduler' ? 'publish' : 'remove'} show ${name} ` +
      `within ${formatMs(timeoutMs)}` +
      (deferred === undefined ? '' : `: its seed is deferred (${deferred.error})`),
  );
}

// ---- text ---------------------------------------------------------------------------------

function renderPlan(result: FlipResult): string {
  const { show, from, to, usage } = result;
  const lines = [
    `Show ${show.name} (${show.id}) is owned by ${from}.`,
    '',
    `Current usage versus caps (whole cores; ${usageCaption(from, to)}):`,
  ];
  lines.push(
    usage.vertices.length === 0
      ? '  nothing: no subscriptions, folders or jobs'
      : renderVertexTables(usage.vertices),
  );
  if (from === to) return lines.join('\n');
  lines.push('', `What the flip to ${to} changes, in one transaction:`);
  if (to === 'scheduler') {
    lines.push(
      '  - show.b_scheduler_managed: false -> true, with acct_managed_change so the daemon seeds and publishes the show at once',
      '  - from then on the scheduler books the show through the daemon; Cuebot only releases its procs',
    );
    const over = usage.vertices.filter((v) => v.over_cap).length;
    if (over > 0) {
      lines.push(
        `  - ${plural(over, 'vertex is', 'vertices are')} already above a cap: bookings there are rejected until usage drops`,
      );
    }
  } else {
    const pending = result.pending_rewrite ?? {};
    const total = Object.values(pending).reduce((a, b) => a + b, 0);
    const detail = Object.entries(pending)
      .filter(([, n]) => n > 0)
      .map(([table, n]) => `${table} ${n}`)
      .join(', ');
    lines.push(
      '  - first the daemon stops taking bookings of the show (show_draining) and waits until none is in flight (at most --timeout); if it cannot, nothing changes',
      `  - the show's PG accounting tables are rewritten from SUM(proc): ${plural(total, 'row differs', 'rows differ')}${detail ? ` (${detail})` : ''}`,
      '  - show.b_scheduler_managed: true -> false, with acct_managed_change: the daemon answers not_managed for the show at once',
      '  - Cuebot books and releases the show against its PG tables again',
    );
  }
  return lines.join('\n');
}

function renderDrain(drain: DrainReport, name: string): string {
  if ('skipped' in drain) {
    return `No daemon listens at ${drain.daemon}: nothing can be in flight; flipping without a drain.`;
  }
  return `The daemon at ${drain.daemon} drained show ${name}: no booking in flight (waited ${formatMs(drain.waited_ms)}).`;
}

function usageCaption(from: Owner, to: Owner): string {
  if (from === 'scheduler') return 'what the daemon enforces now';
  return to === 'scheduler'
    ? 'what the daemon will load and enforce from the first booking'
    : 'what the daemon would load if the show were flipped';
}

function renderFlipped(result: FlipResult): string {
  if (!result.changed)
    return `Show ${result.show.name} was already flipped to ${result.to} meanwhile: nothing changed.`;
  const rewritten =
    result.rewritten === null
      ? ''
      : `, rewrote ${plural(
          Object.values(result.rewritten).reduce((a, b) => a + b, 0),
          'PG row',
        )}`;
  return `Flipped show ${result.show.name} to ${result.to} in ${formatMs(result.flip_ms ?? 0)}${rewritten}.`;
}
