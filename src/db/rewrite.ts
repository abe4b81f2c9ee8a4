/**
 * PG-side recompute: rewrite the display copies of the accounting columns (`int_cores`,
 * `int_gpus`) of subscription, folder_resource, job_resource, layer_resource and point from
 * `SUM(proc)`, for scheduler-managed shows (or one show, for a flip back to Cuebot).
 *
 * Cuebot's triggers refuse an `int_cores` increase above the cap of `subscription` and
 * `job_resource` when the cap column is unchanged in the same UPDATE. Usage can be
 * legitimately above a lowered cap, so each changed row gets its cap columns bumped by one
 * in the same UPDATE (which disarms the trigger's condition) and restored by a second UPDATE
 * in the same transaction: no cap is ever changed after commit. Only rows whose value
 * differs are touched.
 */
import type { Sql } from 'postgres';
import pLimit from 'p-limit';

export type RewriteScope = { kind: 'managed' } | { kind: 'show'; show: string };
/**
 * What the expected values can be computed for: a rewrite scope, or every show (the read-only
 * audit of `cueacct recompute --all-shows`; never a rewrite).
 */
export type TargetScope = RewriteScope | { kind: 'all' };

export type AccountingTable =
  'subscription' | 'folder_resource' | 'job_resource' | 'layer_resource' | 'point';
export const ACCOUNTING_TABLES: readonly AccountingTable[] = [
  'subscription',
  'folder_resource',
  'job_resource',
  'layer_resource',
  'point',
];

/** Rows changed per table. */
export type RewriteReport = Record<AccountingTable, number>;

type Tx = Sql;

function scopeCondition(sql: Tx, scope: TargetScope) {
  if (scope.kind === 'all') return sql`true`;
  return scope.kind === 'managed' ? sql`s.b_scheduler_managed` : sql`s.pk_show = ${scope.show}`;
}

/**
 * Accounted procs of shows in scope, with the keys each table groups by: every non-local proc
 * that exists, whatever its job's state (a killed job is FINISHED before its procs go).
 */
export function liveProcs(sql: Tx, scope: TargetScope) {
  return sql`
    SELECT p.int_cores_reserved AS cores, p.int_gpus_reserved AS gpus, p.pk_layer,
           j.pk_job, j.pk_show, j.pk_folder, j.pk_dept, h.pk_alloc
    FROM proc p
    JOIN job j ON j.pk_job = p.pk_job
    JOIN host h ON h.pk_host = p.pk_host
    JOIN show s ON s.pk_show = j.pk_show
    WHERE NOT p.b_local AND ${scopeCondition(sql, scope)}`;
}

/**
 * A job whose rows a rewrite/audit covers: not FINISHED, or FINISHED with procs still counted
 * or a table value not yet back to 0 (`r` is the job's or layer's resource row, `l` the live
 * procs). Finished history with nothing left to correct stays out of every pass.
 */
function liveJob(sql: Tx) {
  return sql`(j.str_state <> 'FINISHED' OR l.pk_job IS NOT NULL OR r.int_cores <> 0 OR r.int_gpus <> 0)`;
}

/**
 * The expected accounting values of one table's rows in scope, from `SUM(proc)` (the CTE
 * named `live`, see {@link liveProcs}, must be in the same query): `pk`, `cores`
 * (centicores), `gpus`. The rewrite writes exactly these; the audit compares with them.
 */
export function targetRows(sql: Tx, table: AccountingTable, scope: TargetScope) {
  switch (table) {
    case 'subscription':
      return sql`
      SELECT sb.pk_subscription AS pk, COALESCE(SUM(l.cores), 0) AS cores, COALESCE(SUM(l.gpus), 0) AS gpus
      FROM subscription sb
      JOIN show s ON s.pk_show = sb.pk_show
      LEFT JOIN live l ON l.pk_show = sb.pk_show AND l.pk_alloc = sb.pk_alloc
      WHERE ${scopeCondition(sql, scope)}
      GROUP BY sb.pk_subscription`;
    case 'folder_resource':
      return sql`
      SELECT r.pk_folder_resource AS pk, COALESCE(SUM(l.cores), 0) AS cores, COALESCE(SUM(l.gpus), 0) AS gpus
      FROM folder_resource r
      JOIN folder f ON f.pk_folder = r.pk_folder
      JOIN show s ON s.pk_show = f.pk_show
      LEFT JOIN live l ON l.pk_folder = r.pk_folder
      WHERE ${scopeCondition(sql, scope)}
      GROUP BY r.pk_folder_resource`;
    case 'job_resource':
      return sql`
      SELECT r.pk_job_resource AS pk, COALESCE(SUM(l.cores), 0) AS cores, COALESCE(SUM(l.gpus), 0) AS gpus
      FROM job_resource r
      JOIN job j ON j.pk_job = r.pk_job
      JOIN show s ON s.pk_show = j.pk_show
      LEFT JOIN live l ON l.pk_job = r.pk_job
      WHERE ${liveJob(sql)} AND ${scopeCondition(sql, scope)}
      GROUP BY r.pk_job_resource`;
    case 'layer_resource':
      return sql`
      SELECT r.pk_layer_resource AS pk, COALESCE(SUM(l.cores), 0) AS cores, COALESCE(SUM(l.gpus), 0) AS gpus
      FROM layer_resource r
      JOIN job j ON j.pk_job = r.pk_job
      JOIN show s ON s.pk_show = j.pk_show
      LEFT JOIN live l ON l.pk_layer = r.pk_layer
      WHERE ${liveJob(sql)} AND ${scopeCondition(sql, scope)}
      GROUP BY r.pk_layer_resource`;
    case 'point':
      return sql`
      SELECT pt.pk_point AS pk, COALESCE(SUM(l.cores), 0) AS cores, COALESCE(SUM(l.gpus), 0) AS gpus
      FROM point pt
      JOIN show s ON s.pk_show = pt.pk_show
      LEFT JOIN live l ON l.pk_show = pt.pk_show AND l.pk_dept = pt.pk_dept
      WHERE ${scopeCondition(sql, scope)}
      GROUP BY pt.pk_point`;
  }
}

/**
 * Each table's key, and the cap columns Cuebot's triggers compare `int_cores`/`int_gpus`
 * with (bumped and restored around the rewrite). Constants only: safe to splice into SQL.
 */
const TABLES: Record<AccountingTable, { pk: string; caps: readonly string[] }> = {
  subscription: { pk: 'pk_subscription', caps: ['int_burst'] },
  folder_resource: { pk: 'pk_folder_resource', caps: [] },
  job_resource: { pk: 'pk_job_resource', caps: ['int_max_cores', 'int_max_gpus'] },
  layer_resource: { pk: 'pk_layer_resource', caps: [] },
  point: { pk: 'pk_point', caps: [] },
};

async function rewriteTable(tx: Tx, table: AccountingTable, scope: RewriteScope): Promise<number> {
  const { pk, caps } = TABLES[table];
  const disarm = caps.map((cap) => `, ${cap} = t.${cap} + 1`).join('');
  const update = tx`
    UPDATE ${tx(table)} t
    SET int_cores = target.cores, int_gpus = target.gpus ${tx.unsafe(disarm)}
    FROM target
    WHERE t.${tx(pk)} = target.pk AND (t.int_cores <> target.cores OR t.int_gpus <> target.gpus)
    RETURNING t.${tx(pk)} AS pk`;
  if (caps.length === 0) {
    const [row] = await tx<{ changed: number }[]>`
      WITH live AS (${liveProcs(tx, scope)}), target AS (${targetRows(tx, table, scope)}),
      changed AS (${update})
      SELECT count(*)::int AS changed FROM changed`;
    return row!.changed;
  }
  // The changed keys stay in the server: a first pass changes every row, and shipping their
  // keys to the daemon and back held its event loop for tens of milliseconds.
  const changedKeys = tx(`cueacct_changed_${table}`);
  await tx`CREATE TEMP TABLE ${changedKeys} (pk varchar(36) PRIMARY KEY) ON COMMIT DROP`;
  const inserted = await tx`
    WITH live AS (${liveProcs(tx, scope)}), target AS (${targetRows(tx, table, scope)}),
    changed AS (${update})
    INSERT INTO ${changedKeys} SELECT pk FROM changed`;
  if (inserted.count > 0) {
    const restore = caps.map((cap) => `${cap} = t.${cap} - 1`).join(', ');
    await tx`
      UPDATE ${tx(table)} t SET ${tx.unsafe(restore)}
      FROM ${changedKeys} c WHERE t.${tx(pk)} = c.pk`;
  }
  return inserted.count;
}

/**
 * Rewrite all five tables inside the caller's transaction (flip-show uses this so the
 * flag change and the exact numbers commit together).
 */
export async function rewriteAccountingTablesIn(tx: Tx, scope: RewriteScope): Promise<RewriteReport> {
  const report = {} as RewriteReport;
  for (const table of ACCOUNTING_TABLES) report[table] = await rewriteTable(tx, table, scope);
  return report;
}

/**
 * Rewrite the five tables concurrently, each in its own short transaction, at most
 * `concurrency` at a time so the daemon's small pool keeps a connection for other passes.
 */
export async function rewriteAccountingTables(
  sql: Sql,
  scope: RewriteScope,
  concurrency = 2,
): Promise<RewriteReport> {
  const limit = pLimit(concurrency);
  const counts = await Promise.all(
    ACCOUNTING_TABLES.map((table) =>
      limit(() => sql.begin((tx) => rewriteTable(tx as unknown as Tx, table, scope)) as Promise<number>),
    ),
  );
  const report = {} as RewriteReport;
  ACCOUNTING_TABLES.forEach((table, i) => (report[table] = counts[i]!));
  return report;
}
