/**
 * The simulator's view of the farm, read once from the database before the load starts:
 * what can be booked (subscriptions on allocations with hosts, folders, jobs with a layer),
 * the procs that exist (releasable), and the initial usage and caps the audit starts from.
 */
import type { Sql } from 'postgres';
import type { BookingRequest } from '../core/types.js';
import { bookedCoresFromCenticores, capCoresFromCenticores } from '../core/units.js';
import { now } from './clock.js';
import { subscriptionKey, vertexId, type InitialState } from './types.js';

export interface FarmJob {
  id: string;
  show: string;
  folder: string;
  layer: string;
}

export interface FarmShow {
  id: string;
  name: string;
  /** Allocations the show subscribes to that have hosts. */
  allocs: string[];
  jobs: FarmJob[];
}

/** A proc the simulated Cuebot may release, with the vertices it counts against (whole cores). */
export interface ReleasableProc extends BookingRequest {
  id: string;
  /** When it was inserted (0 for procs that existed before the run). */
  since: number;
}

export interface FarmView {
  shows: FarmShow[];
  hostsByAlloc: Map<string, string[]>;
  procs: ReleasableProc[];
  initial: InitialState;
}

export async function loadFarm(sql: Sql, multiplier: number, only?: readonly string[]): Promise<FarmView> {
  // Jobs need a layer for their frames; Cuebot always has one, bare test jobs may not.
  await sql`
    WITH missing AS (
      SELECT gen_random_uuid()::text AS layer, j.pk_job AS job FROM job j
      WHERE j.str_state <> 'FINISHED' AND NOT EXISTS (SELECT 1 FROM layer l WHERE l.pk_job = j.pk_job)
    ), layers AS (
      INSERT INTO layer (pk_layer, pk_job) SELECT layer, job FROM missing RETURNING pk_layer, pk_job
    )
    INSERT INTO layer_resource (pk_layer_resource, pk_layer, pk_job) SELECT pk_layer, pk_layer, pk_job FROM layers`;

  return sql.begin('isolation level repeatable read', async (tx) => {
    const showRows = await tx<{ id: string; name: string; managed: boolean }[]>`
      SELECT pk_show AS id, str_name AS name, b_scheduler_managed AS managed FROM show WHERE b_active`;
    const subRows = await tx<{ show: string; alloc: string; burst: string; hosted: boolean }[]>`
      SELECT s.pk_show AS show, s.pk_alloc AS alloc, s.int_burst::text AS burst,
             EXISTS (SELECT 1 FROM host h WHERE h.pk_alloc = s.pk_alloc) AS hosted
      FROM subscription s`;
    const folderRows = await tx<{ id: string; show: string; maxCores: string; maxGpus: number }[]>`
      SELECT f.pk_folder AS id, f.pk_show AS show, r.int_max_cores::text AS "maxCores", r.int_max_gpus AS "maxGpus"
      FROM folder f JOIN folder_resource r ON r.pk_folder = f.pk_folder`;
    const jobRows = await tx<
      { id: string; show: string; folder: string; layer: string; maxCores: string; maxGpus: number }[]
    >`
      SELECT j.pk_job AS id, j.pk_show AS show, j.pk_folder AS folder,
             (SELECT min(l.pk_layer) FROM layer l WHERE l.pk_job = j.pk_job) AS layer,
             r.int_max_cores::text AS "maxCores", r.int_max_gpus AS "maxGpus"
      FROM job j JOIN job_resource r ON r.pk_job = j.pk_job
      WHERE j.str_state <> 'FINISHED'`;
    const hostRows = await tx<
      { id: string; alloc: string }[]
    >`SELECT pk_host AS id, pk_alloc AS alloc FROM host`;
    const procRows = await tx<
      { id: string; show: string; alloc: string; folder: string; job: string; cores: string; gpus: number }[]
    >`
      SELECT p.pk_proc AS id, j.pk_show AS show, h.pk_alloc AS alloc, j.pk_folder AS folder, p.pk_job AS job,
             p.int_cores_reserved::text AS cores, p.int_gpus_reserved AS gpus
      FROM proc p JOIN job j ON j.pk_job = p.pk_job JOIN host h ON h.pk_host = p.pk_host
      WHERE NOT p.b_local AND j.str_state <> 'FINISHED'`;
    const sums = await tx<{ kind: string; key: string; cores: string; gpus: string }[]>`
      WITH p AS (
        SELECT j.pk_show AS show, h.pk_alloc AS alloc, j.pk_folder AS folder, p.pk_job AS job,
               p.int_cores_reserved AS cores, p.int_gpus_reserved AS gpus
        FROM proc p JOIN job j ON j.pk_job = p.pk_job JOIN host h ON h.pk_host = p.pk_host
        WHERE NOT p.b_local AND j.str_state <> 'FINISHED'
      )
      SELECT 'subscription' AS kind, show || '/' || alloc AS key, SUM(cores)::text AS cores, SUM(gpus)::text AS gpus
        FROM p GROUP BY show, alloc
      UNION ALL SELECT 'folder', folder, SUM(cores)::text, SUM(gpus)::text FROM p GROUP BY folder
      UNION ALL SELECT 'job', job, SUM(cores)::text, SUM(gpus)::text FROM p GROUP BY job`;

    const initial: InitialState = { at: now(), usage: {}, caps: {}, managed: {} };
    for (const row of showRows) initial.managed[row.id] = row.managed;
    for (const row of sums) {
      initial.usage[`${row.kind}:${row.key}`] = {
        cores: bookedCoresFromCenticores(row.cores, multiplier),
        gpus: Number(row.gpus),
      };
    }
    for (const row of subRows) {
      initial.caps[vertexId('subscription', subscriptionKey(row.show, row.alloc))] = {
        maxCores: capCoresFromCenticores(row.burst, multiplier),
        maxGpus: -1,
      };
    }
    for (const row of folderRows) {
      initial.caps[vertexId('folder', row.id)] = {
        maxCores: capCoresFromCenticores(row.maxCores, multiplier),
        maxGpus: row.maxGpus,
      };
    }
    for (const row of jobRows) {
      initial.caps[vertexId('job', row.id)] = {
        maxCores: capCoresFromCenticores(row.maxCores, multiplier),
        maxGpus: row.maxGpus,
      };
    }

    const hostsByAlloc = new Map<string, string[]>();
    for (const row of hostRows) {
      const list = hostsByAlloc.get(row.alloc) ?? [];
      list.push(row.id);
      hostsByAlloc.set(row.alloc, list);
    }
    const wanted = only === undefined ? undefined : new Set(only);
    const shows = new Map<string, FarmShow>();
    for (const row of showRows) {
      if (wanted !== undefined && !wanted.has(row.id)) continue;
      shows.set(row.id, { id: row.id, name: row.name, allocs: [], jobs: [] });
    }
    for (const row of subRows) if (row.hosted) shows.get(row.show)?.allocs.push(row.alloc);
    for (const row of jobRows) {
      if (row.layer !== null)
        shows.get(row.show)?.jobs.push({ id: row.id, show: row.show, folder: row.folder, layer: row.layer });
    }
    const bookable = [...shows.values()].filter((show) => show.allocs.length > 0 && show.jobs.length > 0);
    // Stable order, so a seed reproduces a run.
    bookable.sort((a, b) => (a.id < b.id ? -1 : 1));
    for (const show of bookable) {
      show.allocs.sort();
      show.jobs.sort((a, b) => (a.id < b.id ? -1 : 1));
    }
    return {
      shows: bookable,
      hostsByAlloc,
      procs: procRows.map((row) => ({
        id: row.id,
        show: row.show,
        alloc: row.alloc,
        folder: row.folder,
        job: row.job,
        // As Cuebot puts a single proc on the wire: its centicores divided, truncating.
        cores: Math.trunc(Number(row.cores) / multiplier),
        gpus: row.gpus,
        since: 0,
      })),
      initial,
    };
  }) as Promise<FarmView>;
}
