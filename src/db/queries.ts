/**
 * Every read of the accounting state from PostgreSQL, in one place. Values come back as
 * stored (centicores; int8 sums as text); `src/core/boundary.ts` converts them.
 *
 * Filters follow opencue-schema.md "Derived facts": procs with `b_local = false` whose job
 * is not FINISHED, grouped by (job.pk_show, host.pk_alloc), job.pk_folder and proc.pk_job.
 */
import type { Sql } from 'postgres';
import type { BookedRow, CapRows } from '../core/boundary.js';

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
export async function bookedRows(sql: Queryable, showIds: readonly string[]): Promise<BookedRow[]> {
  if (showIds.length === 0) return [];
  return sql<BookedRow[]>`
    SELECT j.pk_show AS show, h.pk_alloc AS alloc, j.pk_folder AS folder, p.pk_job AS job,
           SUM(p.int_cores_reserved)::int8 AS cores, SUM(p.int_gpus_reserved)::int8 AS gpus
    FROM proc p
    JOIN job j ON j.pk_job = p.pk_job
    JOIN host h ON h.pk_host = p.pk_host
    WHERE NOT p.b_local AND j.str_state <> 'FINISHED' AND j.pk_show = ANY(${showIds as string[]})
    GROUP BY j.pk_show, h.pk_alloc, j.pk_folder, p.pk_job`;
}

/**
 * The five enforced caps of the given shows. Their key sets are the zero-baseline of a
 * recompute: every enumerable key starts at 0 before sums are folded in.
 */
export async function capRows(sql: Queryable, showIds: readonly string[]): Promise<NamedCapRows> {
  if (showIds.length === 0) return { subscriptions: [], folders: [], jobs: [] };
  const ids = showIds as string[];
  const [subscriptions, folders, jobs] = await Promise.all([
    sql<NamedCapRows['subscriptions']>`
      SELECT s.pk_show AS show, s.pk_alloc AS alloc, s.int_burst AS burst, a.str_name AS "allocName"
      FROM subscription s JOIN alloc a ON a.pk_alloc = s.pk_alloc
      WHERE s.pk_show = ANY(${ids})`,
    sql<NamedCapRows['folders']>`
      SELECT f.pk_folder AS id, f.pk_show AS show, f.str_name AS name,
             r.int_max_cores AS "maxCores", r.int_max_gpus AS "maxGpus"
      FROM folder f JOIN folder_resource r ON r.pk_folder = f.pk_folder
      WHERE f.pk_show = ANY(${ids})`,
    sql<NamedCapRows['jobs']>`
      SELECT j.pk_job AS id, j.pk_show AS show, j.str_name AS name,
             r.int_max_cores AS "maxCores", r.int_max_gpus AS "maxGpus"
      FROM job j JOIN job_resource r ON r.pk_job = j.pk_job
      WHERE j.str_state <> 'FINISHED' AND j.pk_show = ANY(${ids})`,
  ]);
  return { subscriptions: [...subscriptions], folders: [...folders], jobs: [...jobs] };
}

/**
 * Booked sums and caps read from one REPEATABLE READ snapshot, so the zero-baseline and
 * the sums agree with each other.
 */
export async function readAccounting(sql: Sql, showIds: readonly string[]): Promise<AccountingRead> {
  if (showIds.length === 0) return { booked: [], caps: { subscriptions: [], folders: [], jobs: [] } };
  return sql.begin('isolation level repeatable read read only', async (tx) => {
    // Caps first: the transaction's snapshot is taken by its first statement.
    const caps = await capRows(tx as unknown as Sql, showIds);
    const booked = await bookedRows(tx as unknown as Sql, showIds);
    return { booked, caps };
  }) as Promise<AccountingRead>;
}

/** The folder of one job (the store keys jobs and folders separately); undefined when unknown. */
export async function jobFolder(sql: Queryable, job: string): Promise<string | undefined> {
  const rows = await sql<{ folder: string }[]>`SELECT pk_folder AS folder FROM job WHERE pk_job = ${job}`;
  return rows[0]?.folder;
}
