/**
 * How the operator commands open their connections: the database (from `--database-url`,
 * `DATABASE_URL` or the PG* variables) with an early round trip so an unreachable server is
 * one clear line and exit 3, and the daemon client with the "was it asked for explicitly"
 * rule of the audit.
 */
import type { Sql } from 'postgres';

import { DaemonClient } from '../cli/daemon-client.js';
import { resolveDatabaseConfig } from '../cli/database-config.js';
import { CliError, unreachableError } from '../cli/errors.js';
import { isUnreachableError } from '../db/errors.js';
import { ping } from '../db/audit-queries.js';
import { openPool, withConnectDeadline } from '../db/connection.js';

export interface Database {
  sql: Sql;
  /** The connection for messages, without its password. */
  describe: string;
  /** The connection target, to open more sessions the same way. */
  target: { url?: string; options: NonNullable<Parameters<typeof openPool>[0]['options']> };
  close(): Promise<void>;
}

/**
 * Open a small pool and make one round trip. Unreachable → exit 3 naming the server (never
 * its password); a bad URL → exit 2 (from resolveDatabaseConfig); authentication or an
 * unknown database → exit 2 (errors.ts maps those SQLSTATEs).
 */
export async function openDatabase(flag: string | undefined, appName: string, max = 2): Promise<Database> {
  const config = resolveDatabaseConfig({ flag });
  const target = { ...(config.url === undefined ? {} : { url: config.url }), options: config.options };
  const sql = openPool(target, max, appName);
  const close = () => sql.end({ timeout: 2 });
  try {
    await withConnectDeadline(target, ping(sql));
  } catch (error) {
    await sql.end({ timeout: 0 }).catch(() => undefined);
    throw databaseError(error, config.describe);
  }
  return { sql, describe: config.describe, target, close };
}

/** Turn a connection failure into "cannot reach the database at …" (exit 3); other errors pass. */
export function databaseError(error: unknown, describe: string): unknown {
  if (error instanceof CliError) return error;
  if (isUnreachableError(error)) {
    const code = (error as { code: string }).code;
    return unreachableError(`cannot reach the database at ${describe}: ${code}`, { cause: error });
  }
  return error;
}

/**
 * Whether the daemon address was given on purpose (`--daemon` on the command line or
 * CUEACCT_DAEMON), as opposed to the default `http://127.0.0.1:7878`.
 */
export function daemonGivenExplicitly(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  if (env.CUEACCT_DAEMON !== undefined && env.CUEACCT_DAEMON !== '') return true;
  return argv.some((arg) => arg === '--daemon' || arg.startsWith('--daemon='));
}

export function daemonClient(url: string, token: string | undefined, timeoutMs?: number): DaemonClient {
  return new DaemonClient({
    url,
    ...(token === undefined ? {} : { token }),
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
}
