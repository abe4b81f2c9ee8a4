/**
 * The audit must be able to fail: its replay (checks 3 and 4, and the rejection replay) run
 * on hand-made simulation reports with known breaches.
 */
import { describe, expect, it } from 'vitest';
import type { BookingRequest } from '../../src/core/types.js';
import type { BookingRecord, SimulationReport } from '../../src/simulate/index.js';
import { replayReport } from './audit.js';

const T0 = 1_000_000;
const S = 'show-a';
const A = 'alloc-1';
const F = 'folder-1';
const J = 'job-1';

/** `cores` (no GPUs) on the one subscription, folder and job of the test farm. */
function onTheFarm(cores: number): BookingRequest {
  return { show: S, alloc: A, folder: F, job: J, cores, gpus: 0 };
}

function report(partial: Partial<SimulationReport>): SimulationReport {
  return {
    startedAt: T0,
    endedAt: T0 + 10_000,
    stoppedBy: 'duration',
    seed: 1,
    options: { daemonUrl: 'http://x', durationMs: 10_000 },
    initial: {
      at: T0,
      usage: {
        [`subscription:${S}/${A}`]: { cores: 8, gpus: 0 },
        [`folder:${F}`]: { cores: 8, gpus: 0 },
        [`job:${J}`]: { cores: 8, gpus: 0 },
      },
      caps: {
        [`subscription:${S}/${A}`]: { maxCores: 10, maxGpus: -1 },
        [`folder:${F}`]: { maxCores: -1, maxGpus: 2 },
        [`job:${J}`]: { maxCores: 100, maxGpus: -1 },
      },
      managed: { [S]: true },
    },
    counts: {} as SimulationReport['counts'],
    bookings: [],
    rejections: [],
    releases: [],
    capChanges: [],
    notReadyAt: [],
    latency: {} as SimulationReport['latency'],
    bookingsPerSecond: 0,
    errors: [],
    ...partial,
  };
}

let seq = 0;
function booking(at: number, cores: number, extra: Partial<BookingRecord> = {}): BookingRecord {
  return {
    ...onTheFarm(cores),
    id: `b${seq}`,
    worker: 0,
    seq: seq++,
    requestedAt: at - 1,
    appliedAt: at,
    leaseExpiresAt: at + 120_000,
    proc: `p${seq}`,
    fate: 'confirmed',
    settledAt: at + 2,
    settleAnswer: 'confirmed',
    ...extra,
  };
}

function release(at: number, cores: number): SimulationReport['releases'][number] {
  return {
    proc: 'p',
    ...onTheFarm(cores),
    notified: true,
    startedAt: at,
    committedAt: at + 3,
  };
}

describe('audit replay', () => {
  it('passes bookings that stay within the burst', () => {
    const r = replayReport(report({ bookings: [booking(T0 + 10, 1), booking(T0 + 20, 1)] }));
    expect(r.violations).toEqual([]);
  });

  it('finds a booking that takes a subscription above its burst', () => {
    const r = replayReport(report({ bookings: [booking(T0 + 10, 1), booking(T0 + 20, 2)] }));
    expect(r.violations).toHaveLength(1);
    expect(r.violations[0]).toMatch(
      /^\[3 burst\] subscription show-a\/alloc-1: booking b\d+ \(\+2 cores\) .* took booked cores to 11 > burst 10/,
    );
  });

  it('counts a release from the moment it started, so room it freed is room', () => {
    const r = replayReport(report({ bookings: [booking(T0 + 20, 2)], releases: [release(T0 + 19, 1)] }));
    expect(r.violations).toEqual([]);
  });

  it('a rollback frees its cores; a booking with no proc frees them at lease expiry', () => {
    const rolledBack = booking(T0 + 10, 2, {
      proc: null,
      fate: 'rolled_back',
      settleAnswer: 'rolled_back',
      settledAt: T0 + 11,
    });
    const dead = booking(T0 + 12, 2, {
      proc: null,
      fate: 'abandoned',
      settleAnswer: null,
      settledAt: null,
      leaseExpiresAt: T0 + 100,
    });
    const ok = replayReport(report({ bookings: [rolledBack, dead, booking(T0 + 200, 2)] }));
    expect(ok.violations).toEqual([]);
    const early = replayReport(
      report({
        bookings: [
          booking(T0 + 12, 2, {
            proc: null,
            fate: 'abandoned',
            settleAnswer: null,
            settledAt: null,
            leaseExpiresAt: T0 + 100,
          }),
          booking(T0 + 50, 1),
        ],
      }),
    );
    expect(early.violations).toHaveLength(1);
  });

  it('checks GPU caps of folders', () => {
    const r = replayReport(
      report({ bookings: [booking(T0 + 10, 1, { gpus: 2 }), booking(T0 + 20, 1, { gpus: 1 })] }),
    );
    expect(r.violations.join('\n')).toMatch(
      /\[4 caps\] folder folder-1: .* took booked GPUs to 3 > max GPUs 2/,
    );
  });

  it('allows the old cap of a decrease only within the grace window', () => {
    const decrease = {
      vertex: { kind: 'subscription' as const, key: `${S}/${A}` },
      field: 'max_cores' as const,
      from: 10,
      to: 9,
      startedAt: T0 + 100,
      committedAt: T0 + 105,
    };
    const within = replayReport(report({ bookings: [booking(T0 + 500, 2)], capChanges: [decrease] }), {
      capDecreaseGraceMs: 1_000,
    });
    expect(within.violations).toEqual([]);
    const after = replayReport(report({ bookings: [booking(T0 + 5_000, 2)], capChanges: [decrease] }), {
      capDecreaseGraceMs: 1_000,
    });
    expect(after.violations).toHaveLength(1);
    expect(after.violations[0]).toMatch(/booked cores to 10 > burst 9/);
  });

  it('replays rejections: right table, current and limit', () => {
    const base = {
      ...onTheFarm(3),
      worker: 0,
      requestedAt: T0 + 29,
      answeredAt: T0 + 30,
    };
    const right = replayReport(
      report({ rejections: [{ ...base, seq: 1, table: 'subscription', current: 8, limit: 10 }] }),
      { checkRejections: true },
    );
    expect(right.violations).toEqual([]);
    const wrongTable = replayReport(
      report({ rejections: [{ ...base, seq: 2, table: 'job', current: 8, limit: 10 }] }),
      { checkRejections: true },
    );
    expect(wrongTable.violations[0]).toMatch(/the replay says subscription \(current 8, limit 10\)/);
    const roomy = replayReport(
      report({ rejections: [{ ...base, seq: 3, cores: 1, table: 'subscription', current: 9, limit: 10 }] }),
      { checkRejections: true },
    );
    expect(roomy.violations[0]).toMatch(/every cap had room/);
  });
});
