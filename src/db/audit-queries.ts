/**
 * Reads of the operator commands (`recompute`, `flip-show`, `seed`, `notify-test`) that the
 * daemon does not need: the accounting tables compared with `SUM(proc)`, with the human
 * names an operator reads, and the show lookups of an audit scope.
 *
 * The expected values come from the same SQL the PG-side rewrite writes
 * ({@link targetRows} over {@link liveProcs} in rewrite.ts), so "the audit finds no drift"
 * and "a rewrite would change nothing" are the same statement.
 */
import type { Sql } from 'postgres';
import {
  ACCOUNTING_TABLES,
  liveProcs,
  targetRows,
  type AccountingTable,
  type TargetScope,
} from './rewrite.js';
import type { ShowRow } from './queries.js';

export interface ScopedShow extends ShowRow {
  managed: boolean;
}

/** One row of an accounting table whose `int_cores`/`int_gpus` differ from `SUM(proc)`. */
export interface TableDriftRow {
  table: AccountingTable;
  /** Primary key of the accounting row. */
  pk: string;
  /**
   * The key the daemon uses for the same vertex: `show/alloc` for a subscription, the folder
   * id, the job id; the layer id for a layer; `show/dept` for a point.
   */
  key: string;
  show: string;
  showName: string;
  managed: boolean;
  /** Alloc, folder, job or department name; for a layer the name of its job. */
  name: string;
  /** `SUM(proc)` in centicores (int8 as text) and GPUs. */
  expectedCores: string;
  expectedGpus: string;
  /** What the table holds. */
  tableCores: string;
  tableGpus: string;
}

export interface TableAudit {
  /** Rows of the table in scope (all compared). */
  checked: Record<AccountingTable, number>;
  /** Only the rows that differ. */
  rows: TableDriftRow[];
}

type Queryable = Sql;

/** Every show, or the scheduler-managed ones, with their ownership flag. */
export async function scopedShows(sql: Queryable, which: 'all' | 'managed'): Promise<ScopedShow[]> {
  return sql<ScopedShow[]>`
    SELECT pk_show AS id, str_name AS name, b_scheduler_managed AS managed
    FROM show ${which === 'managed' ? sql`WHERE b_scheduler_managed` : sql``}
    ORDER BY str_name`;
}

/** Names and keys of a differing row, per table (the `t` alias is the accounting table). */
function describeRow(sql: Queryable, table: AccountingTable) {
  switch (table) {
    case 'subscription':
      return {
        join: sql`JOIN subscription t ON t.pk_subscription = target.pk
                  JOIN show s ON s.pk_show = t.pk_show
                  JOIN alloc n ON n.pk_alloc = t.pk_alloc`,
        key: sql`t.pk_show || '/' || t.pk_alloc`,
        name: sql`n.str_name`,
      };
    case 'folder_resource':
      return {
        join: sql`JOIN folder_resource t ON t.pk_folder_resource = target.pk
                  JOIN folder n ON n.pk_folder = t.pk_folder
                  JOIN show s ON s.pk_show = n.pk_show`,
        key: sql`t.pk_folder`,
        name: sql`n.str_name`,
      };
    case 'job_resource':
      return {
        join: sql`JOIN job_resource t ON t.pk_job_resource = target.pk
                  JOIN job n ON n.pk_job = t.pk_job
                  JOIN show s ON s.pk_show = n.pk_show`,
        key: sql`t.pk_job`,
        name: sql`n.str_name`,
      };
    case 'layer_resource':
      return {
        join: sql`JOIN layer_resource t ON t.pk_layer_resource = target.pk
                  JOIN job n ON n.pk_job = t.pk_job
                  JOIN show s ON s.pk_show = n.pk_show`,
        key: sql`t.pk_layer`,
        name: sql`n.str_name`,
      };
    case 'point':
      return {
        join: sql`JOIN point t ON t.pk_point = target.pk
                  JOIN show s ON s.pk_show = t.pk_show
                  LEFT JOIN dept n ON n.pk_dept = t.pk_dept`,
        key: sql`t.pk_show || '/' || t.pk_dept`,
        name: sql`COALESCE(n.str_name, t.pk_dept)`,
      };
  }
}

interface RawRow extends Omit<TableDriftRow, 'table'> {
  checked: number;
}

/** One table: the number of rows in scope and the rows that differ (one statement). */
async function auditTable(sql: Queryable, table: AccountingTable, scope: TargetScope): Promise<RawRow[]> {
  const row = describeRow(sql, table);
  return sql<RawRow[]>`
    WITH live AS (${liveProcs(sql, scope)}),
    target AS (${targetRows(sql, table, scope)}),
    diff AS (
      SELECT target.pk, ${row.key} AS key, s.pk_show AS show, s.str_name AS "showName",
             s.b_scheduler_managed AS managed, ${row.name} AS name,
             target.cores::int8 AS "expectedCores", target.gpus::int8 AS "expectedGpus",
             t.int_cores::int8 AS "tableCores", t.int_gpus::int8 AS "tableGpus"
      FROM target ${row.join}
      WHERE t.int_cores <> target.cores OR t.int_gpus <> target.gpus
    )
    SELECT (SELECT count(*) FROM target)::int AS checked, diff.*
    FROM (SELECT 1) AS one LEFT JOIN diff ON true`;
}

/**
 * Compare the five accounting tables with `SUM(proc)` for the shows in scope. Run it inside
 * a REPEATABLE READ transaction to have all five tables (and any other read) agree.
 */
export async function auditAccountingTables(sql: Queryable, scope: TargetScope): Promise<TableAudit> {
  const checked = {} as Record<AccountingTable, number>;
  const rows: TableDriftRow[] = [];
  for (const table of ACCOUNTING_TABLES) {
    const raw = await auditTable(sql, table, scope);
    checked[table] = raw[0]?.checked ?? 0;
    for (const { checked: _checked, ...row } of raw) if (row.pk !== null) rows.push({ table, ...row });
  }
  return { checked, rows };
}

/** `SELECT 1`: the first round trip of a command, to report an unreachable database early. */
export async function ping(sql: Queryable): Promise<void> {
  await sql`SELECT 1`;
}

/**
 * Lock a show's row for the rest of the transaction (a flip) and return its ownership flag;
 * undefined when the show is gone.
 */
export async function lockShow(tx: Queryable, show: string): Promise<boolean | undefined> {
  const [row] = await tx<{ managed: boolean }[]>`
    SELECT b_scheduler_managed AS managed FROM show WHERE pk_show = ${show} FOR UPDATE`;
  return row?.managed;
}
