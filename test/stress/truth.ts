/**
 * What the database says, read independently of the daemon's own queries: `SUM(proc)` per
 * enforced vertex of the managed shows (with every cap key present at zero), their caps, and
 * the PG accounting columns the recompute rewrites. Whole cores (sum first, divide once).
 */
import type { Sql } from 'postgres';

export interface TruthRow {
  kind: 'subscription' | 'folder' | 'job';
  key: string;
  show: string;
  cores: number;
  gpus: number;
  /** Burst for a subscription; max_cores for folder/job (<= 0 unlimited). */
  maxCores: number;
  /** -1 for a subscription. */
  maxGpus: number;
  /** The PG accounting columns (subscription.int_cores, *_resource.int_cores/int_gpus), whole cores. */
  tableCores: number;
  tableGpus: number;
}

export async function readTruth(sql: Sql, multiplier: number): Promise<Map<string, TruthRow>> {
  const rows = await sql.begin(
    'isolation level repeatable read read only',
    (tx) => tx<
      {
        kind: TruthRow['kind'];
        key: string;
        show: string;
        cores: string;
        gpus: string;
        max_cores: string;
        max_gpus: string;
        table_cores: string;
        table_gpus: string;
      }[]
    >`
    WITH managed AS (SELECT pk_show FROM show WHERE b_scheduler_managed),
    p AS MATERIALIZED (
      SELECT j.pk_show AS show, h.pk_alloc AS alloc, j.pk_folder AS folder, p.pk_job AS job,
             p.int_cores_reserved AS cores, p.int_gpus_reserved AS gpus
      FROM proc p JOIN job j ON j.pk_job = p.pk_job JOIN host h ON h.pk_host = p.pk_host
      WHERE NOT p.b_local AND j.pk_show IN (SELECT pk_show FROM managed)
    ),
    by_sub AS (SELECT show, alloc, SUM(cores) AS cores, SUM(gpus) AS gpus FROM p GROUP BY show, alloc),
    by_folder AS (SELECT folder, SUM(cores) AS cores, SUM(gpus) AS gpus FROM p GROUP BY folder),
    by_job AS (SELECT job, SUM(cores) AS cores, SUM(gpus) AS gpus FROM p GROUP BY job)
    SELECT 'subscription' AS kind, s.pk_show || '/' || s.pk_alloc AS key, s.pk_show AS show,
           COALESCE(b.cores, 0)::text AS cores, COALESCE(b.gpus, 0)::text AS gpus,
           s.int_burst::text AS max_cores, '-1' AS max_gpus,
           s.int_cores::text AS table_cores, s.int_gpus::text AS table_gpus
      FROM subscription s LEFT JOIN by_sub b ON b.show = s.pk_show AND b.alloc = s.pk_alloc
     WHERE s.pk_show IN (SELECT pk_show FROM managed)
    UNION ALL
    SELECT 'folder', f.pk_folder, f.pk_show, COALESCE(b.cores, 0)::text, COALESCE(b.gpus, 0)::text,
           r.int_max_cores::text, r.int_max_gpus::text, r.int_cores::text, r.int_gpus::text
      FROM folder f JOIN folder_resource r ON r.pk_folder = f.pk_folder LEFT JOIN by_folder b ON b.folder = f.pk_folder
     WHERE f.pk_show IN (SELECT pk_show FROM managed)
    UNION ALL
    SELECT 'job', j.pk_job, j.pk_show, COALESCE(b.cores, 0)::text, COALESCE(b.gpus, 0)::text,
           r.int_max_cores::text, r.int_max_gpus::text, r.int_cores::text, r.int_gpus::text
      FROM job j JOIN job_resource r ON r.pk_job = j.pk_job LEFT JOIN by_job b ON b.job = j.pk_job
     WHERE (j.str_state <> 'FINISHED' OR b.job IS NOT NULL) AND j.pk_show IN (SELECT pk_show FROM managed)`,
  );
  const cores = (v: string) => Math.trunc(Number(v) / multiplier);
  const cap = (v: string) => (Number(v) < 0 ? -1 : cores(v));
  const out = new Map<string, TruthRow>();
  for (const r of rows) {
    out.set(`${r.kind}:${r.key}`, {
      kind: r.kind,
      key: r.key,
      show: r.show,
      cores: cores(r.cores),
      gpus: Number(r.gpus),
      maxCores: cap(r.max_cores),
      maxGpus: r.kind === 'subscription' ? -1 : Number(r.max_gpus),
      tableCores: cores(r.table_cores),
      tableGpus: Number(r.table_gpus),
    });
  }
  return out;
}

/** Ids of the shows marked managed in the database. */
export async function managedShowIds(sql: Sql): Promise<Set<string>> {
  const rows = await sql<{ id: string }[]>`SELECT pk_show AS id FROM show WHERE b_scheduler_managed`;
  return new Set(rows.map((r) => r.id));
}
