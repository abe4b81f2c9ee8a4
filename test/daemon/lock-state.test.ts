/**
 * The lock state machine in-process (src/daemon/daemon.ts) against a real PostgreSQL: a loss
 * during any step wins over that step's result, and stop() is final.
 */
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../src/daemon/daemon.js';
import { DEFAULT_SERVICE_CONFIG } from '../../src/service/service.js';
import { createTestDatabase, waitFor, type TestDatabase } from '../support/db.js';
import { createSmallFarm } from '../support/service.js';

let db: TestDatabase;
const running: Daemon[] = [];

function daemon(): Daemon {
  const started = new Daemon({
    target: { url: db.url },
    databaseDescription: 'test database',
    listen: { host: '127.0.0.1', port: 0 },
    service: { ...DEFAULT_SERVICE_CONFIG, version: 'test' },
    poolSize: 2,
    standby: true,
    lockTtlMs: 1_000,
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
  });
  running.push(started);
  return started;
}

async function lockHolderPid(): Promise<number | undefined> {
  const rows = await db.sql<{ pid: number }[]>`
    SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database
    WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()`;
  return rows[0]?.pid;
}

beforeAll(async () => {
  db = await createTestDatabase();
  await createSmallFarm(db.sql, { managed: true, burst: 100 });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((d) => d.stop()));
});
afterAll(async () => {
  await db?.drop();
});

describe('lock state machine', () => {
  it('a loss during syncing wins: no serving on a dead lock, serving again on the live one', async () => {
    const d = daemon();
    const started = d.start();
    // Every observation: when it says serving, pg_locks names its backend.
    const violations: string[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        if (d.serving) {
          const pid = d.lockStatus().backend_pid;
          const holder = await lockHolderPid();
          if (d.serving && d.lockStatus().backend_pid === pid && holder !== pid)
            violations.push(`serving with backend ${pid}, pg_locks holder ${holder}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    for (let round = 0; round < 3; round++) {
      await waitFor(() => d.state === 'syncing' && d.lockStatus().backend_pid !== null, {
        timeoutMs: 15_000,
        message: 'syncing after an acquisition',
      });
      const pid = d.lockStatus().backend_pid!;
      await db.sql`SELECT pg_terminate_backend(${pid})`;
      await waitFor(() => d.lockStatus().backend_pid !== pid, { message: 'loss noticed' });
      expect(d.state).not.toBe('serving');
    }
    await started;
    await waitFor(() => d.serving, { timeoutMs: 15_000, message: 'serving again' });
    expect(d.lockStatus()).toMatchObject({ state: 'serving', backend_pid: await lockHolderPid() });
    expect(d.lockStatus().handovers).toBe(3);
    watching = false;
    await watcher;
    expect(violations).toEqual([]);
  }, 60_000);

  it('stop() during the re-acquire delay never acquires again', async () => {
    const d = daemon();
    await d.start();
    const pid = d.lockStatus().backend_pid!;
    await db.sql`SELECT pg_terminate_backend(${pid})`;
    await waitFor(() => d.state === 'fenced', { message: 'fenced, waiting to re-acquire' });
    await d.stop();
    expect(d.state).toBe('stopped');
    // Longer than the re-acquire delay (half a TTL) and an attempt: nobody takes the lock.
    const until = performance.now() + 2_000;
    let holders = 0;
    await waitFor(
      async () => {
        if ((await lockHolderPid()) !== undefined) holders++;
        return performance.now() > until;
      },
      { timeoutMs: 5_000, intervalMs: 20 },
    );
    expect(holders).toBe(0);
    expect(await lockHolderPid()).toBeUndefined();
    expect(d.state).toBe('stopped');
  }, 30_000);
});
