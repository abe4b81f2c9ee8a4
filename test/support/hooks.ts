/**
 * Setups that register their own vitest hooks, for the shapes many test files share. Kept apart
 * from daemon.ts, which the plain-node bench and stress runners import too.
 */
import { afterAll, beforeAll } from 'vitest';

import { createTestDatabase, type TestDatabase } from './db.js';
import { startDaemon, waitReady, type Daemon, type DaemonOptions } from './daemon.js';

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
