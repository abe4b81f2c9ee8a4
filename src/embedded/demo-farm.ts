/**
 * The demo farm of `serve --embedded`: the project's test schema plus a small render farm with
 * running procs, so the daemon starts with non-zero counters and `cueacct inspect` has something
 * to show — some vertices close to their caps, one subscription with burst 0 (fail closed), GPU
 * caps, unlimited caps, and one show left to Cuebot (not scheduler-managed).
 *
 * Built in one transaction under an advisory lock, so a crash half-way leaves nothing and two
 * starts at once build it once. It is built only when the schema is absent: a restart keeps the
 * farm as the previous run left it.
 */
import { randomUUID } from 'node:crypto';
import type postgres from 'postgres';

import {
  createAlloc,
  createDept,
  createFolder,
  createFrame,
  createJob,
  createLayer,
  createShow,
  createSubscription,
} from '../db/fixtures.js';
import { SCHEMA_SQL } from '../db/schema.js';

/** Centicores per core in the demo database (OpenCue's multiplier). */
const CC = 100;
/** Key of the transaction-level advisory lock serializing demo builds. */
const BUILD_LOCK = 0x6375_6564; // "cued"

interface DemoAlloc {
  name: string;
  hosts: number;
  coresPerHost: number;
  gpusPerHost: number;
}

interface DemoProcs {
  alloc: string;
  count: number;
  cores: number;
  gpus?: number;
}

interface DemoJob {
  name: string;
  /** Cores; -1 = unlimited; omitted = the schema default (100 cores). */
  maxCores?: number;
  /** GPUs; -1 = unlimited; omitted = the schema default (100). */
  maxGpus?: number;
  state?: string;
  procs?: DemoProcs[];
}

interface DemoFolder {
  name: string;
  dept: string;
  /** Cores; omitted = unlimited (-1). */
  maxCores?: number;
  maxGpus?: number;
  jobs: DemoJob[];
}

interface DemoShow {
  name: string;
  managed: boolean;
  /** Burst per allocation, in cores (0 = no access: every booking rejected). */
  bursts: Record<string, number>;
  folders: DemoFolder[];
}

/** Allocations (host pools). Keys are the allocation names. */
export const DEMO_ALLOCS: readonly DemoAlloc[] = [
  { name: 'local.general', hosts: 10, coresPerHost: 32, gpusPerHost: 0 },
  { name: 'local.gpu', hosts: 4, coresPerHost: 16, gpusPerHost: 4 },
  { name: 'cloud.burst', hosts: 8, coresPerHost: 64, gpusPerHost: 0 },
];

/**
 * The shows. Comments give the booked/cap the procs produce (cores unless noted).
 * feature: sub local.general 180/200, local.gpu 28/48, cloud.burst 64/256.
 * episodic: sub local.general 54/120, local.gpu 18/32, cloud.burst 0/0 (burst 0: fail closed).
 * legacy: not managed (Cuebot's); local.general 40/100.
 */
export const DEMO_SHOWS: readonly DemoShow[] = [
  {
    name: 'feature',
    managed: true,
    bursts: { 'local.general': 200, 'local.gpu': 48, 'cloud.burst': 256 },
    folders: [
      {
        name: 'lighting', // 110/120 cores
        dept: 'lighting',
        maxCores: 120,
        jobs: [
          {
            name: 'feature-sq010-sh0040-lighting',
            maxCores: -1,
            procs: [{ alloc: 'local.general', count: 24, cores: 4 }],
          },
          {
            name: 'feature-sq010-sh0050-lighting',
            maxCores: 16,
            procs: [{ alloc: 'local.general', count: 7, cores: 2 }],
          }, // 14/16
          { name: 'feature-sq005-sh0010-lighting', state: 'FINISHED' },
        ],
      },
      {
        name: 'fx', // 92 cores, 7/8 GPUs
        dept: 'fx',
        maxGpus: 8,
        jobs: [
          {
            name: 'feature-sq020-sim',
            maxCores: 64,
            maxGpus: 4,
            procs: [{ alloc: 'local.gpu', count: 3, cores: 4, gpus: 1 }],
          }, // 3/4 GPUs
          {
            name: 'feature-sq020-render',
            maxCores: -1,
            maxGpus: 4,
            procs: [{ alloc: 'local.gpu', count: 4, cores: 4, gpus: 1 }],
          }, // 4/4 GPUs
          {
            name: 'feature-sq030-cache',
            maxCores: -1,
            procs: [{ alloc: 'cloud.burst', count: 8, cores: 8 }],
          },
        ],
      },
      {
        name: 'anim', // unlimited
        dept: 'anim',
        jobs: [
          {
            name: 'feature-sq010-anim-cache',
            maxCores: -1,
            procs: [{ alloc: 'local.general', count: 15, cores: 4 }],
          },
          { name: 'feature-sq010-playblast', procs: [{ alloc: 'local.general', count: 10, cores: 1 }] },
          { name: 'feature-sq040-layout', maxCores: 8 }, // waiting: no procs yet
        ],
      },
    ],
  },
  {
    name: 'episodic',
    managed: true,
    bursts: { 'local.general': 120, 'local.gpu': 32, 'cloud.burst': 0 },
    folders: [
      {
        name: 'comp', // 54/60 cores
        dept: 'comp',
        maxCores: 60,
        jobs: [
          {
            name: 'episodic-ep101-sh010-comp',
            maxCores: 24,
            procs: [{ alloc: 'local.general', count: 11, cores: 2 }],
          }, // 22/24
          {
            name: 'episodic-ep101-sh020-comp',
            maxCores: -1,
            procs: [{ alloc: 'local.general', count: 8, cores: 4 }],
          },
        ],
      },
      {
        name: 'fx', // 18/40 cores, 3/4 GPUs
        dept: 'fx',
        maxCores: 40,
        maxGpus: 4,
        jobs: [
          {
            name: 'episodic-ep101-sim',
            maxGpus: 2,
            procs: [{ alloc: 'local.gpu', count: 2, cores: 6, gpus: 1 }],
          }, // 2/2 GPUs
          { name: 'episodic-ep102-sim', procs: [{ alloc: 'local.gpu', count: 1, cores: 6, gpus: 1 }] },
        ],
      },
    ],
  },
  {
    name: 'legacy',
    managed: false,
    bursts: { 'local.general': 100, 'local.gpu': 16 },
    folders: [
      {
        name: 'rnd',
        dept: 'rnd',
        jobs: [
          {
            name: 'legacy-turntable',
            maxCores: -1,
            procs: [{ alloc: 'local.general', count: 10, cores: 4 }],
          },
        ],
      },
    ],
  },
];

export interface DemoFarmResult {
  /** True when this call built the farm; false when it was already there. */
  created: boolean;
}

/** Whether the database already has the schema (the `show` table). */
async function hasSchema(sql: postgres.Sql | postgres.TransactionSql): Promise<boolean> {
  const [row] = await sql<{ present: boolean }[]>`SELECT to_regclass('public.show') IS NOT NULL AS present`;
  return row?.present === true;
}

/**
 * If the schema is absent: create it and build the demo farm (one transaction). Otherwise leave
 * the database as it is.
 */
export async function ensureDemoFarm(sql: postgres.Sql): Promise<DemoFarmResult> {
  if (await hasSchema(sql)) return { created: false };
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${BUILD_LOCK})`;
    if (await hasSchema(tx)) return { created: false };
    await tx.unsafe(SCHEMA_SQL).simple();
    // The fixtures are typed for a pool but only run tagged queries, which a transaction has too.
    await buildFarm(tx as unknown as postgres.Sql);
    return { created: true };
  });
}

interface Host {
  id: string;
  freeCores: number;
  freeGpus: number;
}

async function buildFarm(sql: postgres.Sql): Promise<void> {
  const allocIds = new Map<string, string>();
  const hosts = new Map<string, Host[]>();
  for (const alloc of DEMO_ALLOCS) {
    const id = await createAlloc(sql, { name: alloc.name });
    allocIds.set(alloc.name, id);
    const pool: Host[] = [];
    const prefix = alloc.name.replace(/^.*\./, '');
    for (let i = 1; i <= alloc.hosts; i++) {
      const hostId = randomUUID();
      const name = `${prefix}-${String(i).padStart(2, '0')}`;
      await sql`
        INSERT INTO host (pk_host, pk_alloc, str_name, int_cores, int_cores_idle, int_gpus, int_gpus_idle)
        VALUES (${hostId}, ${id}, ${name}, ${alloc.coresPerHost * CC}, ${alloc.coresPerHost * CC},
                ${alloc.gpusPerHost}, ${alloc.gpusPerHost})`;
      pool.push({ id: hostId, freeCores: alloc.coresPerHost, freeGpus: alloc.gpusPerHost });
    }
    hosts.set(alloc.name, pool);
  }

  const depts = new Map<string, string>();
  const dept = async (name: string) => {
    let id = depts.get(name);
    if (id === undefined) {
      id = await createDept(sql, { name });
      depts.set(name, id);
    }
    return id;
  };

  for (const show of DEMO_SHOWS) {
    const showId = await createShow(sql, { name: show.name, managed: show.managed });
    for (const [allocName, burst] of Object.entries(show.bursts)) {
      await createSubscription(sql, {
        show: showId,
        alloc: mustGet(allocIds, allocName),
        burstCenticores: burst * CC,
        sizeCenticores: Math.floor((burst * CC) / 2),
      });
    }
    for (const folder of show.folders) {
      const folderId = await createFolder(sql, {
        show: showId,
        dept: await dept(folder.dept),
        name: `${show.name}-${folder.name}`,
        ...(folder.maxCores !== undefined ? { maxCoresCenticores: capCc(folder.maxCores) } : {}),
        ...(folder.maxGpus !== undefined ? { maxGpus: folder.maxGpus } : {}),
      });
      for (const job of folder.jobs) {
        const jobId = await createJob(sql, {
          folder: folderId,
          name: job.name,
          ...(job.state !== undefined ? { state: job.state } : {}),
          ...(job.maxCores !== undefined ? { maxCoresCenticores: capCc(job.maxCores) } : {}),
          ...(job.maxGpus !== undefined ? { maxGpus: job.maxGpus } : {}),
        });
        if (!job.procs?.length) continue;
        const layer = await createLayer(sql, { job: jobId });
        let frame = 0;
        for (const procs of job.procs) {
          for (let i = 0; i < procs.count; i++) {
            const host = placeProc(mustGet(hosts, procs.alloc), procs.cores, procs.gpus ?? 0, procs.alloc);
            const frameId = await createFrame(sql, {
              layer,
              job: jobId,
              name: `${String(++frame).padStart(4, '0')}-render`,
            });
            await sql`
              INSERT INTO proc (pk_proc, pk_host, pk_job, pk_show, pk_layer, pk_frame,
                                int_cores_reserved, int_mem_reserved, int_gpus_reserved)
              VALUES (${randomUUID()}, ${host.id}, ${jobId}, ${showId}, ${layer}, ${frameId},
                      ${procs.cores * CC}, ${4 * 1024 * 1024}, ${procs.gpus ?? 0})`;
          }
        }
      }
    }
  }
  // Host idle counts as Cuebot keeps them: capacity minus what the procs hold.
  await sql`
    UPDATE host h
       SET int_cores_idle = h.int_cores - p.cores, int_gpus_idle = h.int_gpus - p.gpus
      FROM (SELECT pk_host, sum(int_cores_reserved) AS cores, sum(int_gpus_reserved) AS gpus
              FROM proc GROUP BY pk_host) p
     WHERE h.pk_host = p.pk_host`;
}

/** A cap in cores to centicores, keeping the -1 "unlimited" sentinel. */
function capCc(cores: number): number {
  return cores < 0 ? -1 : cores * CC;
}

/** First host of the allocation with room for the proc (the data above fits by construction). */
function placeProc(pool: Host[], cores: number, gpus: number, alloc: string): Host {
  const host = pool.find((h) => h.freeCores >= cores && h.freeGpus >= gpus);
  if (!host) throw new Error(`demo farm: no room in ${alloc} for a ${cores}-core ${gpus}-GPU proc`);
  host.freeCores -= cores;
  host.freeGpus -= gpus;
  return host;
}

function mustGet<V>(map: Map<string, V>, key: string): V {
  const value = map.get(key);
  if (value === undefined) throw new Error(`demo farm: unknown ${key}`);
  return value;
}
