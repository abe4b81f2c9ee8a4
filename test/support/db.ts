import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { inject } from 'vitest';
import { applySchema } from '../../src/db/schema.js';

export interface TestDatabase {
  /** URL of the new database (same server and user as the admin URL). */
  url: string;
  /** A small pool (max 4) on it. */
  sql: postgres.Sql;
  /** Closes the pool and drops the database, terminating any other session on it. */
  drop(): Promise<void>;
}

function admin(adminUrl: string): postgres.Sql {
  return postgres(adminUrl, { max: 1, onnotice: () => {} });
}

/**
 * A fresh database with the project's schema on the server chosen by global-setup.ts. Each test
 * file makes its own in beforeAll and drops it in afterAll, so files can run in parallel.
 */
export async function createTestDatabase(adminUrl: string = inject('adminUrl')): Promise<TestDatabase> {
  return createDatabaseOn(adminUrl);
}

export interface DatabaseOnOptions {
  /** Start of the new database's name; 16 random hex digits follow. Default `cueacct_t_`. */
  namePrefix?: string;
  /** More options of the pool on it (it always has max 4 and ignores notices). */
  pool?: postgres.Options<Record<string, postgres.PostgresType>>;
}

/**
 * A fresh database with the project's schema on the server of `adminUrl`, without vitest (the
 * plain-node stress runner uses it too). A failed schema drops the database again.
 */
export async function createDatabaseOn(
  adminUrl: string,
  { namePrefix = 'cueacct_t_', pool = {} }: DatabaseOnOptions = {},
): Promise<TestDatabase & { name: string }> {
  const name = `${namePrefix}${randomUUID().replaceAll('-', '').slice(0, 16)}`;
  const a = admin(adminUrl);
  try {
    await a.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await a.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const sql = postgres(url.toString(), { ...pool, max: 4, onnotice: () => {} });

  let dropped: Promise<void> | undefined;
  const drop = () =>
    (dropped ??= (async () => {
      await sql.end({ timeout: 5 });
      const b = admin(adminUrl);
      try {
        await b.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await b.end();
      }
    })());

  try {
    await applySchema(sql);
  } catch (err) {
    await drop();
    throw err;
  }
  return { url: url.toString(), name, sql, drop };
}

export interface WaitForOptions {
  /** Default 5 000 ms. */
  timeoutMs?: number;
  /** Default 20 ms. */
  intervalMs?: number;
  /** What was awaited, for the timeout error. */
  message?: string;
}

/**
 * Polls `condition` until it returns a truthy value, and returns that value; throws after
 * `timeoutMs`. A condition that throws counts as not yet true (the last error becomes the
 * timeout error's cause). Use it instead of sleeping: tests must not sleep to synchronize.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  { timeoutMs = 5_000, intervalMs = 20, message = 'condition' }: WaitForOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${message}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
