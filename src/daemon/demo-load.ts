import type { Logger } from 'pino';
import type { DatabaseConfig } from '../cli/database-config.js';
import { openPool } from '../db/connection.js';
import type { Daemon } from './daemon.js';

/**
 * --simulate: a bounded demo load (simulated scheduler and Cuebot) against this daemon, so
 * `cueacct inspect` shows live movement and rejections at caps.
 */
export function startDemoLoad(
  daemon: Daemon,
  database: DatabaseConfig,
  seconds: number,
  token: string | undefined,
  logger: Logger,
): { stop(): Promise<void> } {
  const abort = new AbortController();
  const pool = openPool(
    { ...(database.url === undefined ? {} : { url: database.url }), options: database.options },
    3, // the simulator's booking worker, its Cuebot and its proc inserts
    'cueacct-simulator',
  );
  const run = import('../simulate/index.js')
    .then(({ runSimulation }) =>
      runSimulation({
        daemonUrl: daemon.url,
        ...(token === undefined ? {} : { token }),
        sql: pool,
        durationMs: seconds * 1000,
        signal: abort.signal,
        // Releases slower than bookings: the farm fills up to its caps, then churns at them,
        // so `inspect` shows bars near 100% and rejections.
        rate: 50,
        releaseRate: 15,
        // A demo keeps counts and latencies only: per-booking records would grow without bound.
        record: false,
      }),
    )
    .then(
      (report) =>
        logger.info(
          {
            stoppedBy: report.stoppedBy,
            counts: report.counts,
            bookingsPerSecond: Math.round(report.bookingsPerSecond),
          },
          'simulation finished',
        ),
      (error: unknown) => logger.warn({ err: String(error) }, 'simulation failed'),
    )
    .finally(() => pool.end({ timeout: 2 }));
  logger.info({ seconds }, 'simulation started: a bounded demo load through this daemon');
  return {
    stop: async () => {
      abort.abort();
      await run;
    },
  };
}
