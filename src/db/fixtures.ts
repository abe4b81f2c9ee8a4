import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';

/**
 * Farm fixtures over the project's test schema (src/db/schema.ts), for tests, the simulator,
 * benchmarks and the demo farm. Every function inserts rows the way Cuebot would leave them and
 * returns the ids it created (lowercase UUID text). Fixtures write only the canonical records
 * (shows, caps, jobs, procs…); they never touch the accounting columns (`int_cores`, `int_gpus`
 * of the resource tables), because deriving those from `SUM(proc)` is cueacct's job.
 *
 * Cores are centicores throughout, as in the database.
 */

type Sql = postgres.Sql;

/** Cuebot requires a facility on allocations and jobs; the subset has no facility table. */
export const DEFAULT_FACILITY = '00000000-0000-0000-0000-000000000001';

/** Cuebot's default memory reservation for a frame, in KiB (3.2 GiB). */
const DEFAULT_MEM_KB = 3_355_443;

/** Short random tag that keeps generated names unique across fixtures in one database. */
function tag(): string {
  return randomUUID().slice(0, 8);
}

export interface ShowOptions {
  name?: string;
  managed?: boolean;
  active?: boolean;
}

export async function createShow(sql: Sql, opts: ShowOptions = {}): Promise<string> {
  const id = randomUUID();
  await sql`
    INSERT INTO show (pk_show, str_name, b_active, b_scheduler_managed)
    VALUES (${id}, ${opts.name ?? `show-${tag()}`}, ${opts.active ?? true}, ${opts.managed ?? false})`;
  return id;
}

export interface AllocOptions {
  name?: string;
  facility?: string;
  enabled?: boolean;
}

export async function createAlloc(sql: Sql, opts: AllocOptions = {}): Promise<string> {
  const id = randomUUID();
  await sql`
    INSERT INTO alloc (pk_alloc, str_name, pk_facility, b_enabled)
    VALUES (${id}, ${opts.name ?? `alloc-${tag()}`}, ${opts.facility ?? DEFAULT_FACILITY},
            ${opts.enabled ?? true})`;
  return id;
}

export interface SubscriptionOptions {
  show: string;
  alloc: string;
  /** The enforced cap. Default 100 000 (1 000 cores). */
  burstCenticores?: number;
  sizeCenticores?: number;
}

export async function createSubscription(sql: Sql, opts: SubscriptionOptions): Promise<string> {
  const id = randomUUID();
  await sql`
    INSERT INTO subscription (pk_subscription, pk_alloc, pk_show, int_size, int_burst)
    VALUES (${id}, ${opts.alloc}, ${opts.show}, ${opts.sizeCenticores ?? 0},
            ${opts.burstCenticores ?? 100_000})`;
  return id;
}

export async function createDept(sql: Sql, opts: { name?: string } = {}): Promise<string> {
  const id = randomUUID();
  await sql`INSERT INTO dept (pk_dept, str_name) VALUES (${id}, ${opts.name ?? `dept-${tag()}`})`;
  return id;
}

export interface FolderOptions {
  show: string;
  /** A new department is created when omitted. */
  dept?: string;
  parent?: string | null;
  name?: string;
  /** folder_resource.int_max_cores; the schema default is -1 (unlimited). */
  maxCoresCenticores?: number;
  /** folder_resource.int_max_gpus; the schema default is -1 (unlimited). */
  maxGpus?: number;
}

export async function createFolder(sql: Sql, opts: FolderOptions): Promise<string> {
  const id = randomUUID();
  const dept = opts.dept ?? (await createDept(sql));
  await sql`
    INSERT INTO folder (pk_folder, pk_parent_folder, pk_show, pk_dept, str_name)
    VALUES (${id}, ${opts.parent ?? null}, ${opts.show}, ${dept}, ${opts.name ?? `folder-${tag()}`})`;
  // Cuebot keeps one point per (show, dept); the accounting refresh writes it.
  await sql`
    INSERT INTO point (pk_point, pk_dept, pk_show) VALUES (${randomUUID()}, ${dept}, ${opts.show})
    ON CONFLICT (pk_show, pk_dept) DO NOTHING`;
  // The folder_resource row comes from the AFTER INSERT trigger; only the caps are ours to set.
  if (opts.maxCoresCenticores !== undefined || opts.maxGpus !== undefined) {
    await sql`
      UPDATE folder_resource
         SET int_max_cores = coalesce(${opts.maxCoresCenticores ?? null}::int, int_max_cores),
             int_max_gpus = coalesce(${opts.maxGpus ?? null}::int, int_max_gpus)
       WHERE pk_folder = ${id}`;
  }
  return id;
}

export interface JobOptions {
  folder: string;
  /** Defaults to the folder's show. */
  show?: string;
  name?: string;
  /** Default `PENDING`. A `FINISHED` job's procs still count until they are deleted. */
  state?: string;
  /** job_resource.int_max_cores; the schema default is 10 000 (100 cores). */
  maxCoresCenticores?: number;
  /** job_resource.int_max_gpus; the schema default is 100. */
  maxGpus?: number;
}

export async function createJob(sql: Sql, opts: JobOptions): Promise<string> {
  const id = randomUUID();
  // The department comes from the folder, as Cuebot files a job under its group's department.
  const inserted = await sql`
    INSERT INTO job (pk_job, pk_folder, pk_show, pk_dept, pk_facility, str_name, str_state)
    SELECT ${id}, f.pk_folder, coalesce(${opts.show ?? null}::varchar, f.pk_show), f.pk_dept,
           ${DEFAULT_FACILITY}, ${opts.name ?? `job-${tag()}`}, ${opts.state ?? 'PENDING'}
      FROM folder f
     WHERE f.pk_folder = ${opts.folder}`;
  if (inserted.count !== 1) throw new Error(`createJob: no folder ${opts.folder}`);
  // Setting caps with int_cores unchanged does not arm the verify trigger.
  if (opts.maxCoresCenticores !== undefined || opts.maxGpus !== undefined) {
    await sql`
      UPDATE job_resource
         SET int_max_cores = coalesce(${opts.maxCoresCenticores ?? null}::int, int_max_cores),
             int_max_gpus = coalesce(${opts.maxGpus ?? null}::int, int_max_gpus)
       WHERE pk_job = ${id}`;
  }
  return id;
}

/** Creates a layer and its layer_resource row (the subset has no trigger for it). */
export async function createLayer(sql: Sql, opts: { job: string }): Promise<string> {
  const id = randomUUID();
  await sql`INSERT INTO layer (pk_layer, pk_job) VALUES (${id}, ${opts.job})`;
  await sql`
    INSERT INTO layer_resource (pk_layer_resource, pk_layer, pk_job) VALUES (${id}, ${id}, ${opts.job})`;
  return id;
}

export interface HostOptions {
  alloc: string;
  /** At most 30 characters (host.str_name is VARCHAR(30)). */
  name?: string;
  /** Default 1 600 (16 cores). */
  coresCenticores?: number;
  gpus?: number;
}

export async function createHost(sql: Sql, opts: HostOptions): Promise<string> {
  const id = randomUUID();
  const cores = opts.coresCenticores ?? 1_600;
  const gpus = opts.gpus ?? 0;
  await sql`
    INSERT INTO host (pk_host, pk_alloc, str_name, int_cores, int_cores_idle, int_gpus, int_gpus_idle)
    VALUES (${id}, ${opts.alloc}, ${opts.name ?? `host-${tag()}`}, ${cores}, ${cores}, ${gpus}, ${gpus})`;
  return id;
}

export interface FrameOptions {
  layer: string;
  /** Defaults to the layer's job. */
  job?: string;
  name?: string;
  state?: string;
}

export async function createFrame(sql: Sql, opts: FrameOptions): Promise<string> {
  const id = randomUUID();
  const inserted = await sql`
    INSERT INTO frame (pk_frame, pk_layer, pk_job, str_name, str_state)
    SELECT ${id}, l.pk_layer, coalesce(${opts.job ?? null}::varchar, l.pk_job),
           ${opts.name ?? `frame-${tag()}`}, ${opts.state ?? 'RUNNING'}
      FROM layer l
     WHERE l.pk_layer = ${opts.layer}`;
  if (inserted.count !== 1) throw new Error(`createFrame: no layer ${opts.layer}`);
  return id;
}

export interface ProcOptions {
  host: string;
  job: string;
  /** Created under the job when omitted. */
  layer?: string;
  /** Created under the layer when omitted. */
  frame?: string;
  /** Must be > 0 (the insert trigger refuses otherwise). Default 100 (1 core). */
  coresCenticores?: number;
  gpus?: number;
  /** Local procs are never counted by the accounting. */
  local?: boolean;
  memKb?: number;
}

export interface CreatedProc {
  id: string;
  layer: string;
  frame: string;
}

/**
 * Inserts a proc (a booking). Only the proc row is written: host idle counts and the
 * accounting columns are left alone, as the scheduler's proc insert leaves them.
 */
export async function createProc(sql: Sql, opts: ProcOptions): Promise<CreatedProc> {
  const layer = opts.layer ?? (await createLayer(sql, { job: opts.job }));
  const frame = opts.frame ?? (await createFrame(sql, { layer, job: opts.job }));
  const id = randomUUID();
  const inserted = await sql`
    INSERT INTO proc (pk_proc, pk_host, pk_job, pk_show, pk_layer, pk_frame,
                      int_cores_reserved, int_mem_reserved, int_gpus_reserved, b_local)
    SELECT ${id}, ${opts.host}, j.pk_job, j.pk_show, ${layer}, ${frame},
           ${opts.coresCenticores ?? 100}, ${opts.memKb ?? DEFAULT_MEM_KB}, ${opts.gpus ?? 0},
           ${opts.local ?? false}
      FROM job j
     WHERE j.pk_job = ${opts.job}`;
  if (inserted.count !== 1) throw new Error(`createProc: no job ${opts.job}`);
  return { id, layer, frame };
}

/**
 * A whole farm in one compact description. Every show subscribes to every allocation; every
 * job has one layer and every proc its own frame. With 0-based indexes into FarmIds' arrays:
 * - subscription k: show ⌊k / allocs⌋, alloc k % allocs
 * - folder f: show ⌊f / foldersPerShow⌋, dept f % depts (top-level folders, no parent)
 * - job j and layer j: folder ⌊j / jobsPerFolder⌋ (show and dept are the folder's)
 * - host h: alloc ⌊h / hostsPerAlloc⌋
 * - proc p and frame p: job p % jobs, host p % hosts
 */
export interface FarmSpec {
  shows: number;
  allocs: number;
  foldersPerShow: number;
  jobsPerFolder: number;
  hostsPerAlloc: number;
  procs: number;
  /** The first `managedShows` shows get b_scheduler_managed = true. Default: all. */
  managedShows?: number;
  /** Departments, assigned to folders round-robin. Default 1. */
  depts?: number;
  burstCenticores?: number;
  sizeCenticores?: number;
  /** Omit to keep the schema defaults (folder -1/-1, job 10 000/100). */
  folderMaxCoresCenticores?: number;
  folderMaxGpus?: number;
  jobMaxCoresCenticores?: number;
  jobMaxGpus?: number;
  hostCoresCenticores?: number;
  hostGpus?: number;
  procCoresCenticores?: number;
  procGpus?: number;
  /** Every n-th job (1-based) is FINISHED. 0 = none. */
  finishedJobEvery?: number;
  /** Every n-th proc (1-based) is local. 0 = none. */
  localProcEvery?: number;
}

/** Ids in creation order; FarmSpec's comment says how the indexes relate. */
export interface FarmIds {
  shows: string[];
  allocs: string[];
  subscriptions: string[];
  depts: string[];
  folders: string[];
  jobs: string[];
  layers: string[];
  hosts: string[];
  frames: string[];
  procs: string[];
}

function uuids(n: number): string[] {
  return Array.from({ length: n }, () => randomUUID());
}

/**
 * Builds a farm with set-based statements (a dozen round trips in one transaction, whatever its
 * size): ids are made here and sent as arrays; rows come from INSERT … SELECT over
 * `unnest(…) WITH ORDINALITY`, parents chosen by index arithmetic. Large parent arrays are
 * joined on their ordinality rather than subscripted, because subscripting a text array is a
 * linear walk in PostgreSQL (quadratic over 100k procs); small ones (shows, allocs, depts) are
 * subscripted.
 */
export async function createFarm(sql: Sql, spec: FarmSpec): Promise<FarmIds> {
  const nFolders = spec.shows * spec.foldersPerShow;
  const nJobs = nFolders * spec.jobsPerFolder;
  const nHosts = spec.allocs * spec.hostsPerAlloc;
  if (spec.procs > 0 && (nJobs === 0 || nHosts === 0)) {
    throw new Error('createFarm: procs need at least one job and one host');
  }
  const ids: FarmIds = {
    shows: uuids(spec.shows),
    allocs: uuids(spec.allocs),
    subscriptions: uuids(spec.shows * spec.allocs),
    depts: uuids(spec.depts ?? 1),
    folders: uuids(nFolders),
    jobs: uuids(nJobs),
    layers: uuids(nJobs),
    hosts: uuids(nHosts),
    frames: uuids(spec.procs),
    procs: uuids(spec.procs),
  };
  const t = tag();
  const managed = spec.managedShows ?? spec.shows;
  const nDepts = ids.depts.length;
  const finishedEvery = spec.finishedJobEvery ?? 0;
  const localEvery = spec.localProcEvery ?? 0;
  const hostCores = spec.hostCoresCenticores ?? 1_600;
  const hostGpus = spec.hostGpus ?? 0;

  await sql.begin(async (tx) => {
    await tx`
      INSERT INTO show (pk_show, str_name, b_scheduler_managed)
      SELECT id, ${t} || '-show-' || i, i <= ${managed}
        FROM unnest(${ids.shows}::text[]) WITH ORDINALITY AS u(id, i)`;
    await tx`
      INSERT INTO alloc (pk_alloc, str_name, pk_facility)
      SELECT id, ${t} || '.alloc-' || i, ${DEFAULT_FACILITY}
        FROM unnest(${ids.allocs}::text[]) WITH ORDINALITY AS u(id, i)`;
    // SQL ordinality is 1-based, hence the (i - 1) … + 1 around FarmSpec's 0-based arithmetic.
    await tx`
      INSERT INTO subscription (pk_subscription, pk_show, pk_alloc, int_size, int_burst)
      SELECT id, (${ids.shows}::text[])[(i - 1) / ${spec.allocs} + 1],
             (${ids.allocs}::text[])[(i - 1) % ${spec.allocs} + 1],
             ${spec.sizeCenticores ?? 0}, ${spec.burstCenticores ?? 100_000}
        FROM unnest(${ids.subscriptions}::text[]) WITH ORDINALITY AS u(id, i)`;
    await tx`
      INSERT INTO dept (pk_dept, str_name)
      SELECT id, ${t} || '-dept-' || i FROM unnest(${ids.depts}::text[]) WITH ORDINALITY AS u(id, i)`;
    await tx`
      INSERT INTO folder (pk_folder, pk_show, pk_dept, str_name)
      SELECT id, (${ids.shows}::text[])[(i - 1) / ${spec.foldersPerShow} + 1],
             (${ids.depts}::text[])[(i - 1) % ${nDepts} + 1], 'folder-' || i
        FROM unnest(${ids.folders}::text[]) WITH ORDINALITY AS u(id, i)`;
    await tx`
      INSERT INTO point (pk_point, pk_show, pk_dept)
      SELECT gen_random_uuid()::text, pk_show, pk_dept
        FROM (SELECT DISTINCT f.pk_show, f.pk_dept
                FROM unnest(${ids.folders}::text[]) AS u(id) JOIN folder f ON f.pk_folder = u.id) d`;
    if (spec.folderMaxCoresCenticores !== undefined || spec.folderMaxGpus !== undefined) {
      await tx`
        UPDATE folder_resource
           SET int_max_cores = coalesce(${spec.folderMaxCoresCenticores ?? null}::int, int_max_cores),
               int_max_gpus = coalesce(${spec.folderMaxGpus ?? null}::int, int_max_gpus)
          FROM unnest(${ids.folders}::text[]) AS u(id)
         WHERE pk_folder = u.id`;
    }
    await tx`
      INSERT INTO job (pk_job, pk_folder, pk_show, pk_dept, pk_facility, str_name, str_state)
      SELECT u.id, f.pk_folder, f.pk_show, f.pk_dept, ${DEFAULT_FACILITY}, ${t} || '-job-' || u.i,
             CASE WHEN ${finishedEvery} > 0 AND u.i % ${finishedEvery} = 0 THEN 'FINISHED' ELSE 'PENDING' END
        FROM unnest(${ids.jobs}::text[]) WITH ORDINALITY AS u(id, i)
        JOIN unnest(${ids.folders}::text[]) WITH ORDINALITY AS fo(id, i) ON fo.i = (u.i - 1) / ${spec.jobsPerFolder} + 1
        JOIN folder f ON f.pk_folder = fo.id`;
    if (spec.jobMaxCoresCenticores !== undefined || spec.jobMaxGpus !== undefined) {
      await tx`
        UPDATE job_resource
           SET int_max_cores = coalesce(${spec.jobMaxCoresCenticores ?? null}::int, int_max_cores),
               int_max_gpus = coalesce(${spec.jobMaxGpus ?? null}::int, int_max_gpus)
          FROM unnest(${ids.jobs}::text[]) AS u(id)
         WHERE pk_job = u.id`;
    }
    await tx`
      INSERT INTO layer (pk_layer, pk_job)
      SELECT layer, job FROM unnest(${ids.layers}::text[], ${ids.jobs}::text[]) AS u(layer, job)`;
    await tx`
      INSERT INTO layer_resource (pk_layer_resource, pk_layer, pk_job)
      SELECT layer, layer, job FROM unnest(${ids.layers}::text[], ${ids.jobs}::text[]) AS u(layer, job)`;
    await tx`
      INSERT INTO host (pk_host, pk_alloc, str_name, int_cores, int_cores_idle, int_gpus, int_gpus_idle)
      SELECT id, (${ids.allocs}::text[])[(i - 1) / ${spec.hostsPerAlloc} + 1], ${t} || '-h' || i,
             ${hostCores}, ${hostCores}, ${hostGpus}, ${hostGpus}
        FROM unnest(${ids.hosts}::text[]) WITH ORDINALITY AS u(id, i)`;
    if (spec.procs === 0) return;
    await tx`
      INSERT INTO frame (pk_frame, pk_layer, pk_job, str_name, str_state)
      SELECT u.id, j.layer, j.job, u.i || '-frame', 'RUNNING'
        FROM unnest(${ids.frames}::text[]) WITH ORDINALITY AS u(id, i)
        JOIN unnest(${ids.layers}::text[], ${ids.jobs}::text[]) WITH ORDINALITY AS j(layer, job, i)
          ON j.i = (u.i - 1) % ${nJobs} + 1`;
    await tx`
      INSERT INTO proc (pk_proc, pk_host, pk_job, pk_show, pk_layer, pk_frame,
                        int_cores_reserved, int_mem_reserved, int_gpus_reserved, b_local)
      SELECT u.id, h.id, j.pk_job, j.pk_show, f.pk_layer, f.pk_frame,
             ${spec.procCoresCenticores ?? 100}, ${DEFAULT_MEM_KB}, ${spec.procGpus ?? 0},
             ${localEvery} > 0 AND u.i % ${localEvery} = 0
        FROM unnest(${ids.procs}::text[], ${ids.frames}::text[]) WITH ORDINALITY AS u(id, frame, i)
        JOIN unnest(${ids.hosts}::text[]) WITH ORDINALITY AS h(id, i) ON h.i = (u.i - 1) % ${nHosts} + 1
        JOIN frame f ON f.pk_frame = u.frame
        JOIN job j ON j.pk_job = f.pk_job`;
  });
  return ids;
}
