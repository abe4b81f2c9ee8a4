/**
 * The audit behind `cueacct recompute`, in process against a harness database, with a
 * scripted daemon: the window it allows the live store (carried part, a booking landing
 * between its two reads), and the optional default daemon.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { StateResponse, StatusResponse, VertexState } from '../../src/api/types.js';
import { DaemonClient } from '../../src/cli/daemon-client.js';
import { rewriteAccountingTables } from '../../src/db/rewrite.js';
import { runAudit, type AuditOptions } from '../../src/ops/audit.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { closedPort, createNamedFarm, type NamedFarm } from './support.js';

let db: TestDatabase;
let farm: NamedFarm;

beforeAll(async () => {
  db = await createTestDatabase();
  // SUM(proc) = 6 cores.
  farm = await createNamedFarm(db.sql, {
    show: 'windowshow',
    managed: true,
    burst: 100,
    procs: [{ centicores: 600 }],
  });
  await rewriteAccountingTables(db.sql, { kind: 'managed' });
});
afterAll(async () => {
  await db?.drop();
});

function status(overrides: Partial<StatusResponse> = {}): StatusResponse {
  return {
    ready: true,
    managed_shows: [{ id: farm.show, name: 'windowshow' }],
    deferred_shows: [],
    last_recompute: { at: '2026-01-01T00:00:00.000Z', duration_ms: 1, ok: true, error: null, drift: null },
    ...overrides,
  } as StatusResponse;
}

/** The job vertex as the daemon would report it; subscription and folder agree with SUM(proc). */
function state(job: Partial<VertexState>): StateResponse {
  const base = {
    show: farm.show,
    show_name: 'windowshow',
    gpus: 0,
    inflight_gpus: 0,
    settled_gpus: 0,
    max_gpus: -1,
    utilization: null,
  };
  const vertex = (kind: VertexState['kind'], key: string, extra: Partial<VertexState> = {}) =>
    ({
      ...base,
      kind,
      key,
      alloc: kind === 'subscription' ? farm.alloc : null,
      name: null,
      cores: 6,
      inflight_cores: 0,
      settled_cores: 0,
      max_cores: -1,
      ...extra,
    }) as VertexState;
  return {
    epoch: 1,
    total: 3,
    vertices: [
      vertex('subscription', `${farm.show}/${farm.alloc}`),
      vertex('folder', farm.folder),
      vertex('job', farm.job, job),
    ],
  };
}

/** A daemon whose two state reads answer `first` then `second`. */
function scripted(first: StateResponse, second: StateResponse, s = status()): DaemonClient {
  const reads = [first, second];
  return {
    describe: 'http://scripted',
    status: async () => s,
    stateAll: async () => reads.shift() ?? second,
    admin: async () => ({}),
    close: () => undefined,
  } as unknown as DaemonClient;
}

const options = (daemon: DaemonClient | undefined, extra: Partial<AuditOptions> = {}): AuditOptions => ({
  scope: { kind: 'managed' },
  multiplier: 100,
  ...(daemon === undefined ? {} : { daemon }),
  daemonRequired: false,
  strict: false,
  dryRun: true,
  ...extra,
});

describe('the daemon comparison window', () => {
  it('allows the carried part: SUM(proc) within [live - carried, live]', async () => {
    const inFlight = state({ cores: 10, inflight_cores: 3, settled_cores: 1 });
    const ok = await runAudit(db.sql, options(scripted(inFlight, inFlight)));
    expect(ok).toMatchObject({ ok: true, drift: [], daemon: { comparison: 'compared' } });
    expect(ok.checked.daemon_vertices).toBe(3);

    const high = state({ cores: 10, inflight_cores: 1 });
    const over = await runAudit(db.sql, options(scripted(high, high)));
    expect(over.ok).toBe(false);
    expect(over.drift).toEqual([
      expect.objectContaining({
        vertex: 'job',
        expected: { cores: 6, gpus: 0 },
        daemon: { cores: 10, gpus: 0, carried_cores: 1, carried_gpus: 0 },
        daemon_drift: { cores: 3, gpus: 0 },
        pg: null,
      }),
    ]);
  });

  it('spans both reads: a release applied between them is not drift, a store below both is', async () => {
    const before = state({ cores: 8 });
    const after = state({ cores: 5 });
    expect((await runAudit(db.sql, options(scripted(before, after)))).ok).toBe(true);

    const low = state({ cores: 4 });
    const result = await runAudit(db.sql, options(scripted(low, state({ cores: 5 }))));
    expect(result.drift[0]).toMatchObject({ vertex: 'job', daemon_drift: { cores: -1, gpus: 0 } });
  });

  it('a vertex the daemon does not have counts as 0 there', async () => {
    const missing = state({});
    missing.vertices = missing.vertices.filter((v) => v.kind !== 'job');
    const result = await runAudit(db.sql, options(scripted(missing, missing)));
    expect(result.drift[0]).toMatchObject({
      vertex: 'job',
      daemon: { cores: 0 },
      daemon_drift: { cores: -6 },
    });
  });
});

describe('daemon status findings', () => {
  it('a failed last recompute is a problem, and PG differences of managed shows then count as drift', async () => {
    await db.sql`UPDATE folder_resource SET int_cores = 0 WHERE pk_folder = ${farm.folder}`;
    try {
      const healthy = await runAudit(db.sql, options(scripted(state({}), state({}))));
      expect(healthy).toMatchObject({ ok: true, drift: [], lag: [{ vertex: 'folder', counted: false }] });

      const failing = status({
        last_recompute: { at: 'then', duration_ms: 1, ok: false, error: 'boom', drift: null },
      });
      const result = await runAudit(db.sql, options(scripted(state({}), state({}), failing)));
      expect(result.ok).toBe(false);
      expect(result.problems).toEqual(["the daemon's last recompute failed at then: boom"]);
      expect(result.drift).toEqual([expect.objectContaining({ vertex: 'folder', counted: true })]);
    } finally {
      await rewriteAccountingTables(db.sql, { kind: 'managed' });
    }
  });

  it('a daemon that is not ready is a problem and is not compared', async () => {
    const result = await runAudit(db.sql, options(scripted(state({}), state({}), status({ ready: false }))));
    expect(result).toMatchObject({ ok: false, daemon: { comparison: 'not_ready' } });
    expect(result.problems[0]).toContain('is not ready');
  });

  it('the default daemon is optional: unreachable, the store is just not compared', async () => {
    const port = await closedPort();
    const client = new DaemonClient({ url: `http://127.0.0.1:${port}` });
    try {
      const result = await runAudit(db.sql, options(client));
      expect(result).toMatchObject({
        ok: true,
        daemon: {
          comparison: 'unreachable',
          error: `cannot reach daemon at http://127.0.0.1:${port}: ECONNREFUSED`,
        },
      });
      await expect(runAudit(db.sql, options(client, { daemonRequired: true }))).rejects.toMatchObject({
        exitCode: 3,
      });
    } finally {
      client.close();
    }
  });
});
