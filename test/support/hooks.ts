/**
 * Setups that register their own vitest hooks, for the shapes many test files share. Kept apart
 * from daemon.ts and service.ts so those stay free of vitest (the plain-node bench and stress
 * runners import daemon.ts).
 */
import type { Logger } from 'pino';
import { afterAll, afterEach, beforeAll } from 'vitest';

import type { ServiceConfig } from '../../src/service/service.js';

import { createTestDatabase, waitFor, type TestDatabase } from './db.js';
import { startDaemon, waitReady, type Daemon, type DaemonOptions } from './daemon.js';
import { startService, type RunningService } from './service.js';

function started<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is not there: its beforeAll has not run (or failed)`);
  return value;
}

/**
 * A harness database and one daemon on it (`cueacct serve`, the built CLI) for the whole test
 * file, started in beforeAll and stopped in afterAll. Read them through the getters inside hooks
 * and tests.
 */
export function daemonPerFile(options: Omit<DaemonOptions, 'databaseUrl'> = {}): {
  readonly db: TestDatabase;
  readonly daemon: Daemon;
} {
  let db: TestDatabase | undefined;
  let daemon: Daemon | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
    daemon = await startDaemon({ ...options, databaseUrl: db.url });
    // "listening" comes before the bootstrap ends: wait for it, so no seed races the fixtures.
    await waitReady(daemon);
  });
  afterAll(async () => {
    await daemon?.stop();
    await db?.drop();
  });
  return {
    get db() {
      return started(db, 'the database');
    },
    get daemon() {
      return started(daemon, 'the daemon');
    },
  };
}

/**
 * A harness database for the whole test file, and an AccountingService per test: `start()`
 * starts one on the database (stopped after the test) and returns it once it is quiet.
 */
export function servicePerTest(): {
  readonly db: TestDatabase;
  start(overrides?: Partial<ServiceConfig>, logger?: Logger): Promise<RunningService>;
} {
  let db: TestDatabase | undefined;
  let running: RunningService | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterEach(async () => {
    await running?.stop();
    running = undefined;
  });
  afterAll(async () => {
    await db?.drop();
  });
  return {
    get db() {
      return started(db, 'the database');
    },
    async start(overrides, logger) {
      const service = await startService(started(db, 'the database').url, overrides, logger);
      running = service;
      await waitFor(() => service.service.listenerConnected, { message: 'listener connected' });
      // The first LISTEN triggers a recompute and a reseed; let them finish so tests start quiet.
      await Promise.all([service.service.recompute(), service.service.reseed()]);
      return service;
    },
  };
}
