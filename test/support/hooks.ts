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

/**
 * A harness database and one daemon on it (`cueacct serve`, the built CLI) for the whole test
 * file, started in beforeAll and stopped in afterAll. The two objects are returned at once and
 * filled in by beforeAll, so a file destructures them at its top and uses them in hooks and
 * tests: `const { db, daemon } = daemonPerFile({ args: QUIET_DAEMON });`. (Filled in by copying:
 * what createTestDatabase and startDaemon hand back does not change after they return.)
 */
export function daemonPerFile(options: Omit<DaemonOptions, 'databaseUrl'> = {}): {
  db: TestDatabase;
  daemon: Daemon;
} {
  const db: Partial<TestDatabase> = {};
  const daemon: Partial<Daemon> = {};
  beforeAll(async () => {
    Object.assign(db, await createTestDatabase());
    Object.assign(daemon, await startDaemon({ ...options, databaseUrl: db.url! }));
    // "listening" comes before the bootstrap ends: wait for it, so no seed races the fixtures.
    await waitReady(daemon as Daemon);
  });
  afterAll(async () => {
    await daemon.stop?.();
    await db.drop?.();
  });
  return { db: db as TestDatabase, daemon: daemon as Daemon };
}

/**
 * A harness database for the whole test file (filled in by beforeAll, as in daemonPerFile), and
 * an AccountingService per test: `start()` starts one on it, stopped after the test, and returns
 * it once it is quiet.
 */
export function servicePerTest(): {
  db: TestDatabase;
  start(overrides?: Partial<ServiceConfig>, logger?: Logger): Promise<RunningService>;
} {
  const db: Partial<TestDatabase> = {};
  let running: RunningService | undefined;
  beforeAll(async () => {
    Object.assign(db, await createTestDatabase());
  });
  afterEach(async () => {
    await running?.stop();
    running = undefined;
  });
  afterAll(async () => {
    await db.drop?.();
  });
  return {
    db: db as TestDatabase,
    async start(overrides, logger) {
      const service = await startService(db.url!, overrides, logger);
      running = service;
      await waitFor(() => service.service.listenerConnected, { message: 'listener connected' });
      // The first LISTEN triggers a recompute and a reseed; let them finish so tests start quiet.
      await Promise.all([service.service.recompute(), service.service.reseed()]);
      return service;
    },
  };
}
