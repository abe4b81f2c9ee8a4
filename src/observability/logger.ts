/**
 * The daemon's logger (pino). JSON lines to stdout by default; human-readable lines when
 * stdout is a terminal or `pretty` is set. Pretty printing runs in-process and synchronously
 * (pino-pretty's formatter on a synchronous stdout stream): no pino transports, no worker
 * threads, so it bundles into the single executable and nothing is lost at exit.
 *
 * Secrets never reach the output: token/password/authorization fields are censored, and
 * connection URLs and error messages have their passwords replaced (see src/cli/redact.ts).
 */
import pino from 'pino';
import type { DestinationStream, Logger, LoggerOptions } from 'pino';
import PinoPretty from 'pino-pretty';

import { REDACTED, redactText, redactUrl } from '../cli/redact.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LoggerConfig {
  level: LogLevel | (string & {});
  /** Human-readable lines; default: when stdout is a TTY. */
  pretty?: boolean;
  /** Logger name (the `name` field). */
  name?: string;
  /** Write here instead of stdout (tests). */
  destination?: DestinationStream;
}

/** Fields censored wherever they appear at the top level or one object deep. */
const SECRET_KEYS = [
  'token',
  'password',
  'passwd',
  'secret',
  'authorization',
  'cookie',
  'PGPASSWORD',
  'CUEACCT_TOKEN',
];

/** pino `redact` paths: the secret keys at the top level and one object deep, and request headers. */
export const REDACT_PATHS: readonly string[] = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((key) => `*.${key}`),
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'env.DATABASE_URL',
];

/** Fields holding a connection URL: logged with the password replaced. */
const URL_KEYS = ['url', 'databaseUrl', 'database_url', 'connectionString', 'dsn', 'DATABASE_URL'];

function redactUrlField(value: unknown): unknown {
  return typeof value === 'string' ? redactUrl(value) : value;
}

/** pino's error serializer, with URLs and `password=` parameters scrubbed from message and stack. */
function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const out = pino.stdSerializers.err(err) as unknown as Record<string, unknown>;
  if (typeof out.message === 'string') out.message = redactText(out.message);
  if (typeof out.stack === 'string') out.stack = redactText(out.stack);
  return out;
}

/** Build the daemon's logger. */
export function createLogger(config: LoggerConfig): Logger {
  const serializers: Record<string, (value: unknown) => unknown> = {
    err: serializeError,
    error: serializeError,
  };
  for (const key of URL_KEYS) serializers[key] = redactUrlField;
  const options: LoggerOptions = {
    level: config.level,
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    serializers,
    ...(config.name !== undefined ? { name: config.name } : {}),
  };

  const pretty = config.pretty ?? process.stdout.isTTY === true;
  if (!pretty) return pino(options, config.destination ?? pino.destination({ dest: 1, sync: true }));

  const colorize = config.destination === undefined && process.stdout.isTTY === true;
  const prettify = PinoPretty.prettyFactory({
    colorize,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
    singleLine: false,
  });
  const target = config.destination ?? pino.destination({ dest: 1, sync: true });
  const stream: DestinationStream = {
    write(line: string): void {
      target.write(prettify(line));
    },
  };
  return pino(options, stream);
}
