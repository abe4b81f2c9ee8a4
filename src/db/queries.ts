/**
 * Every read of the accounting state from PostgreSQL, in one place. Values come back as
 * stored (centicores; an int8 sum as a number when it is a safe integer, else as text);
 * `src/core/boundary.ts` converts them.
 *
 * Filters follow opencue-schema.md "Derived facts": every existing proc with `b_local = false`,
 * whatever its job's state (a killed job is FINISHED while Cuebot still deletes its procs, each
 * with its release), grouped by (job.pk_show, host.pk_alloc), job.pk_folder and proc.pk_job.
 */
import type { PendingQuery, Sql } from 'postgres';
import type { BookedRow, CapRows } from '../core/boundary.js';
import type { PgInteger } from '../core/units.js';
import { asRead, compactInteger } from './row-strings.js';

export interface ShowRow {
  id: string;
  name: string;
}

/** Cap rows with the names the status page and the TUI show. */
export interface NamedCapRows extends CapRows {
  subscriptions: (CapRows['subscriptions'][number] & { allocName: string })[];
  folders: (CapRows['folders'][number] & { name: string })[];
  jobs: (CapRows['jobs'][number] & { name: string })[];
}

export interface AccountingRead {
  booked: BookedRow[];
  caps: NamedCapRows;
}

type Queryable = Sql;

/**
 * Rows fetched per round trip of a farm-wide read. Whole, a farm's answer arrives faster than
 * it is parsed and the parse runs as one task (tens of milliseconds at 20k rows): no booking
 * may wait behind it.
 */
const ROWS_PER_FETCH = 1_000;

/** How a farm-wide read keeps each text value (a `StringInterner`'s `intern`, or as read). */
export type KeepText = (value: string) => string;

/**
 * Every row of a query, a few hundred per round trip (see {@link ROWS_PER_FETCH}), each kept
 * as `keep` makes it. The callback form of the cursor, not `for await`: the iterator resolves
 * a promise with every batch, and a promise that grew old before its batch arrived keeps the
 * batch alive through young-generation GCs (measured: 7-11 ms pauses instead of 1-3 ms on a
 * farm-wide read that kept nothing).
 */
async function fetchInBatches<R extends object, T>(
  query: PendingQuery<R[]>,
  keep: (row: R) => T,
): Promise<T[]> {
  const rows: T[] = [];
  await query.cursor(ROWS_PER_FETCH, (batch) => {
    for (const row of batch) rows.push(keep(row));
  });
  return rows;
}

/** How each column of a row is kept: text through the read's `KeepText`, int8 text as a number. */
type RowShape<R> = { readonly [K in keyof R]-?: 'text' | 'integer' };

const SUBSCRIPTION: RowShape<NamedCapRows['subscriptions'][number]> = {
  show: 'text',
  alloc: 'text',
  burst: 'integer',
  allocName: 'text',
};
const FOLDER: RowShape<NamedCapRows['folders'][number]> = {
  id: 'text',
  show: 'text',
  name: 'text',
  maxCores: 'integer',
  maxGpus: 'integer',
};
const JOB: RowShape<NamedCapRows['jobs'][number]> = { ...FOLDER, folder: 'text' };
const BOOKED: RowShape<BookedRow> = {
  show: 'text',
  alloc: 'text',
  folder: 'text',
  job: 'text',
  cores: 'integer',
  gpus: 'integer',
};

/** A copy of each row with its columns kept as `shape` says. */
function keepAs<R extends object>(shape: RowShape<R>, text: KeepText): (row: R) => R {
  const columns = Object.entries(shape) as [keyof R, 'text' | 'integer'][];
  return (row) => {
    const kept = {} as Record<keyof R, unknown>;
    for (const [column, kind] of columns) {
      const value = row[column];
      kept[column] = kind === 'text' ? text(value as string) : compactInteger(value as PgInteger);
    }
    return kept as R;
  };
}

export async function managedShows(sql: Queryable): Promise<ShowRow[]> {
  return sql<ShowRow[]>`
    SELECT pk_show AS id, str_name AS name FROM show WHERE b_scheduler_managed ORDER BY str_name`;
}

/** A show by id or by name (operators type names); undefined when there is none. */
export async function findShow(
  sql: Queryable,
  idOrName: string,
): Promise<(ShowRow & { managed: boolean }) | undefined> {
  const rows = await sql<(ShowRow & { managed: boolean })[]>`
    SELECT pk_show AS id, str_name AS name, b_scheduler_managed AS managed
    FROM show WHERE pk_show = ${idOrName} OR str_name = ${idOrName}
    ORDER BY (pk_show = ${idOrName}) DESC LIMIT 1`;
  return rows[0];
}

/** `SUM(proc)` per (show, alloc, folder, job) for the given shows, in centicores. */
export async function bookedRows(
  sql: Queryable,
  showIds: readonly string[],
  text: KeepText = asRead,
): Promise<BookedRow[]> {
  if (showIds.length === 0) return [];
  return fetchInBatches(
    sql<BookedRow[]>`
    SELECT j.pk_show AS show, h.pk_alloc AS alloc, j.pk_folder AS folder, p.pk_job AS job,
           SUM(p.int_cores_reserved)::int8 AS cores, SUM(p.int_gpus_reserved)::int8 AS gpus
    FROM proc p
    JOIN job j ON j.pk_job = p.pk_job
    JOIN host h ON h.pk_host = p.pk_host
    WHERE NOT p.b_local AND j.pk_show = ANY(${showIds as string[]})
    GROUP BY j.pk_show, h.pk_alloc, j.pk_folder, p.pk_job`,
    keepAs(BOOKED, text),
  );
}

/**
 * The five enforced caps of the given shows. Their key sets are the zero-baseline of a
 * recompute: every enumerable key starts at 0 before sums are folded in. A job is in the set
 * while it is not FINISHED or still has procs (a killed job keeps its key until its last proc
 * is gone); each job row carries its folder, so a recompute sees a job that moved.
 */
export async function capRows(
  sql: Queryable,
  showIds: readonly string[],
  text: KeepText = asRead,
): Promise<NamedCapRows> {
  if (showIds.length === 0) return { subscriptions: [], folders: [], jobs: [] };
  const ids = showIds as string[];
  const [subscriptions, folders, jobs] = await Promise.all([
    fetchInBatches(
      sql<NamedCapRows['subscriptions']>`
      SELECT s.pk_show AS show, s.pk_alloc AS alloc, s.int_burst AS burst, a.str_name AS "allocName"
      FROM subscription s JOIN alloc a ON a.pk_alloc = s.pk_alloc
      WHERE s.pk_show = ANY(${ids})`,
      keepAs(SUBSCRIPTION, text),
    ),
    fetchInBatches(
      sql<NamedCapRows['folders']>`
      SELECT f.pk_folder AS id, f.pk_show AS show, f.str_name AS name,
             r.int_max_cores AS "maxCores", r.int_max_gpus AS "maxGpus"
      FROM folder f JOIN folder_resource r ON r.pk_folder = f.pk_folder
      WHERE f.pk_show = ANY(${ids})`,
      keepAs(FOLDER, text),
    ),
    fetchInBatches(
      sql<NamedCapRows['jobs']>`
      SELECT j.pk_job AS id, j.pk_show AS show, j.pk_folder AS folder, j.str_name AS name,
             r.int_max_cores AS "maxCores", r.int_max_gpus AS "maxGpus"
      FROM job j JOIN job_resource r ON r.pk_job = j.pk_job
      WHERE j.pk_show = ANY(${ids})
        AND (j.str_state <> 'FINISHED' OR EXISTS (
              SELECT 1 FROM proc p WHERE p.pk_job = j.pk_job AND NOT p.b_local))`,
      keepAs(JOB, text),
    ),
  ]);
  return { subscriptions, folders, jobs };
}

/**
 * Booked sums and caps read from one REPEATABLE READ snapshot, so the zero-baseline and
 * the sums agree with each other.
 */
export async function readAccounting(
  sql: Sql,
  showIds: readonly string[],
  text: KeepText = asRead,
): Promise<AccountingRead> {
  if (showIds.length === 0) return { booked: [], caps: { subscriptions: [], folders: [], jobs: [] } };
  return sql.begin('isolation level repeatable read read only', async (tx) => {
    // Caps first: the transaction's snapshot is taken by its first statement.
    const caps = await capRows(tx as unknown as Sql, showIds, text);
    const booked = await bookedRows(tx as unknown as Sql, showIds, text);
    return { booked, caps };
  }) as Promise<AccountingRead>;
}

/** Keys a booking named that the store holds no caps for (or must re-check). */
export interface UnknownKeys {
  jobs: string[];
  folders: string[];
  subscriptions: { show: string; alloc: string }[];
}

/**
 * The caps (and a job's show and folder) of the given keys, whatever their show, in one
 * round of reads: what a booking of a key created after the last cap read needs before it is
 * checked. A key missing from the answer does not exist.
 */
export async function capRowsOfKeys(sql: Queryable, keys: UnknownKeys): Promise<NamedCapRows> {
  const none = Promise.resolve([]);
  const [subscriptions, folders, jobs] = await Promise.all([
    keys.subscriptions.length === 0
      ? none
      : sql<NamedCapRows['subscriptions']>`
      SELECT s.pk_show AS show, s.pk_alloc AS alloc, s.int_burst AS burst, a.str_name AS "allocName"
      FROM subscription s JOIN alloc a ON a.pk_alloc = s.pk_alloc
      WHERE (s.pk_show, s.pk_alloc) IN (
        SELECT * FROM unnest(${keys.subscriptions.map((k) => k.show)}::varchar[],
                             ${keys.subscriptions.map((k) => k.alloc)}::varchar[]))`,
    keys.folders.length === 0
      ? none
      : sql<NamedCapRows['folders']>`
      SELECT f.pk_folder AS id, f.pk_show AS show, f.str_name AS name,
             r.int_max_cores AS "maxCores", r.int_max_gpus AS "maxGpus"
      FROM folder f JOIN folder_resource r ON r.pk_folder = f.pk_folder
      WHERE f.pk_folder = ANY(${keys.folders})`,
    keys.jobs.length === 0
      ? none
      : sql<NamedCapRows['jobs']>`
      SELECT j.pk_job AS id, j.pk_show AS show, j.pk_folder AS folder, j.str_name AS name,
             r.int_max_cores AS "maxCores", r.int_max_gpus AS "maxGpus"
      FROM job j JOIN job_resource r ON r.pk_job = j.pk_job
      WHERE j.pk_job = ANY(${keys.jobs})`,
  ]);
  return { subscriptions: [...subscriptions], folders: [...folders], jobs: [...jobs] };
}

/** The folder of one job (the store keys jobs and folders separately); undefined when unknown. */
export async function jobFolder(sql: Queryable, job: string): Promise<string | undefined> {
  const rows = await sql<{ folder: string }[]>`SELECT pk_folder AS folder FROM job WHERE pk_job = ${job}`;
  return rows[0]?.folder;
}
