/**
 * Flags shared by several commands, and the custom flag types (seconds, HOST:PORT, JSON) with
 * their pure parsers. Commands spread the groups they need:
 *
 *   static override flags = { ...databaseFlags, ...daemonFlags, json: jsonFlag, … };
 *
 * `--verbose` is not here per command: it is a base flag of every command (see base-command.ts).
 */
import { Flags } from '@oclif/core';

import { DEFAULT_DAEMON_URL, parseDaemonAddress } from './daemon-client.js';
import { usageError } from './errors.js';

export { DEFAULT_DAEMON_URL };
export const DEFAULT_LISTEN = '127.0.0.1:7878';

// ---- pure parsers (throw usage errors, exit 2; oclif prefixes the message with the flag name) ----

/** A number of seconds: decimal allowed, optional `s` suffix, within [min, max]. */
export function parseSeconds(input: string, bounds: { min?: number; max?: number } = {}): number {
  const text = input.trim().replace(/s$/i, '');
  const value = text === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(value)) throw usageError(`expected a number of seconds, got "${input}"`);
  if (bounds.min !== undefined && value < bounds.min)
    throw usageError(`must be at least ${bounds.min} s, got ${value}`);
  if (bounds.max !== undefined && value > bounds.max)
    throw usageError(`must be at most ${bounds.max} s, got ${value}`);
  return value;
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** `HOST:PORT` or `[IPv6]:PORT`; port 0-65535 (0 = any free port). */
export function parseListenAddress(input: string): ListenAddress {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(input.trim());
  if (!match) throw usageError(`expected HOST:PORT (or [IPv6]:PORT), got "${input}"`);
  const port = Number(match[3]);
  if (port > 65535) throw usageError(`port must be 0-65535, got ${port}`);
  return { host: (match[1] ?? match[2])!, port };
}

export function formatListenAddress({ host, port }: ListenAddress): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Any JSON value (object payloads are validated further by the command). */
export function parseJsonValue(input: string): unknown {
  try {
    return JSON.parse(input);
  } catch (err) {
    throw usageError(`not valid JSON: ${(err as Error).message}`);
  }
}

// ---- custom flag types ----

/** A duration in seconds (`15`, `0.5`, `15s`). Options: `min`, `max`. */
export const secondsFlag = Flags.custom<number, { min?: number; max?: number }>({
  helpValue: '<seconds>',
  parse: async (input, _ctx, opts) => parseSeconds(input, opts),
});

/** `HOST:PORT`, validated and normalized. */
export const listenFlag = Flags.custom<string>({
  helpValue: '<host:port>',
  parse: async (input) => formatListenAddress(parseListenAddress(input)),
});

/** A JSON document given inline. */
export const jsonValueFlag = Flags.custom<unknown>({
  helpValue: '<json>',
  parse: async (input) => parseJsonValue(input),
});

/** A daemon address: `http://HOST:PORT`, `unix:/PATH` or `/PATH`. */
export const daemonUrlFlag = Flags.custom<string>({
  helpValue: '<url>',
  parse: async (input) => {
    parseDaemonAddress(input);
    return input.trim();
  },
});

// ---- shared flags ----

export const verboseFlag = Flags.boolean({
  summary: 'Print details (cause, stack trace) with errors, and more progress output.',
  default: false,
});

export const jsonFlag = Flags.boolean({
  summary: 'Print machine-readable JSON on stdout instead of text.',
  default: false,
});

export const databaseUrlFlag = Flags.string({
  summary:
    'PostgreSQL connection URL (postgres://user:password@host:port/db?sslmode=…); default $DATABASE_URL, ' +
    'else the standard PG* variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE), ' +
    'else localhost:5432. Prefer the environment for passwords: flags are visible in `ps`.',
  helpValue: '<url>',
});

/** Flags of every command that talks to PostgreSQL. */
export const databaseFlags = {
  'database-url': databaseUrlFlag,
};

export const daemonFlag = daemonUrlFlag({
  summary: 'Address of the running daemon: http://HOST:PORT, unix:/PATH or /PATH.',
  default: DEFAULT_DAEMON_URL,
  env: 'CUEACCT_DAEMON',
});

/** `--token`, from CUEACCT_TOKEN by default; `summary` to say what it is for in this command. */
export function tokenFlag(
  summary = 'Bearer token for the daemon API (prefer the environment variable: flags are visible in `ps`).',
) {
  return Flags.string({ summary, env: 'CUEACCT_TOKEN', helpValue: '<token>' });
}

/** Flags of every command that talks to a running daemon. */
export const daemonFlags = {
  daemon: daemonFlag,
  token: tokenFlag(),
};

/** `--show NAME|ID`. */
export function showFlag(summary = 'Limit to one show, by name or id.', exclusive?: string[]) {
  return Flags.string({ summary, helpValue: '<name|id>', ...(exclusive ? { exclusive } : {}) });
}

/** Centicores per core in the database (`int_*cores*` columns); OpenCue stores cores x 100. */
export const coreMultiplierFlag = Flags.integer({
  summary: 'Core units per core in the database (OpenCue stores cores x 100).',
  default: 100,
  min: 1,
  env: 'CUEACCT_CORE_MULTIPLIER',
});
