import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createAlloc,
  createDept,
  createFarm,
  createFolder,
  createFrame,
  createHost,
  createJob,
  createLayer,
  createProc,
  createShow,
  createSubscription,
} from '../../src/db/fixtures.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';

let db: TestDatabase;
let sql: postgres.Sql;

beforeAll(async () => {
  db = await createTestDatabase();
  sql = db.sql;
});

afterAll(async () => {
  await db?.drop();
});

const RAISED = { code: 'P0001' }; // plpgsql RAISE EXCEPTION
const UNIQUE = { code: '23505' };
const FOREIGN_KEY = { code: '23503' };

/** A show, an alloc, a folder and a job, each with its defaults. */
async function basics() {
  const show = await createShow(sql);
  const alloc = await createAlloc(sql);
  const folder = await createFolder(sql, { show });
  const job = await createJob(sql, { folder });
  return { show, alloc, folder, job };
}

describe('defaults and the AFTER INSERT triggers', () => {
  it('a new folder gets a folder_resource row with its own id, uncapped (-1/-1)', async () => {
    const { folder } = await basics();
    const rows = await sql`SELECT * FROM folder_resource WHERE pk_folder = ${folder}`;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      pk_folder_resource: folder,
      int_cores: 0,
      int_max_cores: -1,
      int_min_cores: 0,
      int_gpus: 0,
      int_max_gpus: -1,
      int_min_gpus: 0,
    });
  });

  it('a new job gets a job_resource row with its own id, capped at 100 cores and 100 GPUs', async () => {
    const { job } = await basics();
    const rows = await sql`SELECT * FROM job_resource WHERE pk_job = ${job}`;
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      pk_job_resource: job,
      int_cores: '0', // BIGINT arrives as a string from postgres.js
      int_max_cores: 10_000,
      int_min_cores: 100,
      int_gpus: 0,
      int_max_gpus: 100,
      int_min_gpus: 0,
      int_local_cores: 0,
      int_priority: 1,
    });
  });

  it('shows are unmanaged and subscriptions empty by default', async () => {
    const { show, alloc } = await basics();
    const sub = await sql`
      INSERT INTO subscription (pk_subscription, pk_alloc, pk_show)
      VALUES (gen_random_uuid()::text, ${alloc}, ${show}) RETURNING *`;
    expect(sub[0]).toMatchObject({ int_size: '0', int_burst: '0', int_cores: 0, int_gpus: 0 });
    const [s] = await sql`SELECT b_active, b_scheduler_managed FROM show WHERE pk_show = ${show}`;
    expect(s).toEqual({ b_active: true, b_scheduler_managed: false });
  });
});

describe('subscription BEFORE UPDATE (burst check)', () => {
  async function subscription(burst: number) {
    const { show, alloc } = await basics();
    const id = await createSubscription(sql, { show, alloc, burstCenticores: burst });
    return id;
  }

  it('raises when int_cores grows past an unchanged burst', async () => {
    const id = await subscription(1_000);
    await sql`UPDATE subscription SET int_cores = 1000 WHERE pk_subscription = ${id}`;
    await expect(
      sql`UPDATE subscription SET int_cores = 1001 WHERE pk_subscription = ${id}`,
    ).rejects.toMatchObject(RAISED);
    await expect(
      sql`UPDATE subscription SET int_cores = int_cores + 1 WHERE pk_subscription = ${id}`,
    ).rejects.toThrow(/exceeded burst/);
  });

  it('does not raise when the burst changes in the same UPDATE, nor when usage shrinks', async () => {
    const id = await subscription(1_000);
    // The rewrite pattern: move the cap in the same statement, restore it afterwards.
    await sql`UPDATE subscription SET int_cores = 1500, int_burst = int_burst + 1 WHERE pk_subscription = ${id}`;
    await sql`UPDATE subscription SET int_burst = 1000 WHERE pk_subscription = ${id}`;
    // Over the cap already: shrinking (still over) is allowed, growing is not.
    await sql`UPDATE subscription SET int_cores = 1200 WHERE pk_subscription = ${id}`;
    await expect(
      sql`UPDATE subscription SET int_cores = 1300 WHERE pk_subscription = ${id}`,
    ).rejects.toMatchObject(RAISED);
    const [row] = await sql`SELECT int_cores, int_burst FROM subscription WHERE pk_subscription = ${id}`;
    expect(row).toEqual({ int_cores: 1200, int_burst: '1000' });
  });
});

describe('job_resource BEFORE UPDATE (max cores / max GPUs check)', () => {
  it('raises when int_cores grows past an unchanged max, including max -1', async () => {
    const { job } = await basics();
    await sql`UPDATE job_resource SET int_cores = 10000 WHERE pk_job = ${job}`;
    await expect(sql`UPDATE job_resource SET int_cores = 10001 WHERE pk_job = ${job}`).rejects.toThrow(
      /exceeded max cores/,
    );

    await sql`UPDATE job_resource SET int_max_cores = -1, int_cores = 0 WHERE pk_job = ${job}`;
    await expect(sql`UPDATE job_resource SET int_cores = 1 WHERE pk_job = ${job}`).rejects.toMatchObject(
      RAISED,
    );
  });

  it('raises when int_gpus grows past an unchanged max GPUs, including max -1', async () => {
    const job = await createJob(sql, { folder: (await basics()).folder, maxGpus: 2 });
    await sql`UPDATE job_resource SET int_gpus = 2 WHERE pk_job = ${job}`;
    await expect(sql`UPDATE job_resource SET int_gpus = 3 WHERE pk_job = ${job}`).rejects.toMatchObject(
      RAISED,
    );
    await sql`UPDATE job_resource SET int_max_gpus = -1, int_gpus = 0 WHERE pk_job = ${job}`;
    await expect(sql`UPDATE job_resource SET int_gpus = 1 WHERE pk_job = ${job}`).rejects.toMatchObject(
      RAISED,
    );
  });

  it('does not raise when the max changes in the same UPDATE', async () => {
    const job = await createJob(sql, {
      folder: (await basics()).folder,
      maxCoresCenticores: -1,
      maxGpus: -1,
    });
    await sql.begin(async (tx) => {
      await tx`UPDATE job_resource SET int_cores = 5000, int_max_cores = -2 WHERE pk_job = ${job}`;
      await tx`UPDATE job_resource SET int_max_cores = -1 WHERE pk_job = ${job}`;
      await tx`UPDATE job_resource SET int_gpus = 3, int_max_gpus = -2 WHERE pk_job = ${job}`;
      await tx`UPDATE job_resource SET int_max_gpus = -1 WHERE pk_job = ${job}`;
    });
    const [row] = await sql`
      SELECT int_cores, int_max_cores, int_gpus, int_max_gpus FROM job_resource WHERE pk_job = ${job}`;
    expect(row).toEqual({ int_cores: '5000', int_max_cores: -1, int_gpus: 3, int_max_gpus: -1 });
  });
});

describe('proc', () => {
  async function bookable() {
    const { show, alloc, job } = await basics();
    const host = await createHost(sql, { alloc });
    const layer = await createLayer(sql, { job });
    return { show, alloc, job, host, layer };
  }

  it('BEFORE INSERT raises when int_cores_reserved <= 0', async () => {
    const { job, host } = await bookable();
    await expect(createProc(sql, { host, job, coresCenticores: 0 })).rejects.toMatchObject(RAISED);
    await expect(createProc(sql, { host, job, coresCenticores: -100 })).rejects.toThrow(/0 cores/);
    const proc = await createProc(sql, { host, job, coresCenticores: 1 });
    expect(proc.id).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('allows one proc per frame', async () => {
    const { job, host, layer } = await bookable();
    const frame = await createFrame(sql, { layer });
    await createProc(sql, { host, job, layer, frame });
    await expect(createProc(sql, { host, job, layer, frame })).rejects.toMatchObject(UNIQUE);
  });

  it('references an existing host and frame', async () => {
    const { job, host, layer } = await bookable();
    await expect(createProc(sql, { host: crypto.randomUUID(), job, layer })).rejects.toMatchObject(
      FOREIGN_KEY,
    );
    await expect(createProc(sql, { host, job, layer, frame: crypto.randomUUID() })).rejects.toMatchObject(
      FOREIGN_KEY,
    );
  });
});

describe('uniqueness', () => {
  it('one subscription per (show, alloc)', async () => {
    const { show, alloc } = await basics();
    await createSubscription(sql, { show, alloc });
    await expect(createSubscription(sql, { show, alloc })).rejects.toMatchObject(UNIQUE);
  });

  it('allocation and host names are unique', async () => {
    const alloc = await createAlloc(sql, { name: 'pdx.general' });
    await expect(createAlloc(sql, { name: 'pdx.general' })).rejects.toMatchObject(UNIQUE);
    await createHost(sql, { alloc, name: 'render-0001' });
    await expect(createHost(sql, { alloc, name: 'render-0001' })).rejects.toMatchObject(UNIQUE);
  });

  it('one job_resource per job and one folder_resource per folder', async () => {
    const { folder, job } = await basics();
    await expect(
      sql`INSERT INTO job_resource (pk_job_resource, pk_job) VALUES (gen_random_uuid()::text, ${job})`,
    ).rejects.toMatchObject(UNIQUE);
    await expect(
      sql`INSERT INTO folder_resource (pk_folder_resource, pk_folder) VALUES (gen_random_uuid()::text, ${folder})`,
    ).rejects.toMatchObject(UNIQUE);
  });
});

describe('fixtures', () => {
  it('build a small farm whose procs carry the job show and the host allocation', async () => {
    const show = await createShow(sql, { name: 'spiderman', managed: true });
    const alloc = await createAlloc(sql);
    await createSubscription(sql, { show, alloc, burstCenticores: 2_000, sizeCenticores: 1_000 });
    const dept = await createDept(sql, { name: 'lighting' });
    const root = await createFolder(sql, { show, dept, name: 'root' });
    const folder = await createFolder(sql, { show, dept, parent: root, maxCoresCenticores: 800, maxGpus: 2 });
    const job = await createJob(sql, { show, folder, maxCoresCenticores: 400, maxGpus: 1 });
    const host = await createHost(sql, { alloc, coresCenticores: 3_200, gpus: 2 });
    await createProc(sql, { host, job, coresCenticores: 200, gpus: 1 });
    await createProc(sql, { host, job, coresCenticores: 100 });
    await createProc(sql, { host, job, coresCenticores: 100, local: true });

    const [caps] = await sql`
      SELECT fr.int_max_cores AS folder_cores, fr.int_max_gpus AS folder_gpus,
             jr.int_max_cores AS job_cores, jr.int_max_gpus AS job_gpus, j.pk_dept, j.str_state
        FROM job j
        JOIN job_resource jr ON jr.pk_job = j.pk_job
        JOIN folder_resource fr ON fr.pk_folder = j.pk_folder
       WHERE j.pk_job = ${job}`;
    expect(caps).toEqual({
      folder_cores: 800,
      folder_gpus: 2,
      job_cores: 400,
      job_gpus: 1,
      pk_dept: dept,
      str_state: 'PENDING',
    });

    // The booked sum per subscription key, as the accounting reads it (local procs excluded).
    const booked = await sql`
      SELECT j.pk_show, h.pk_alloc, SUM(p.int_cores_reserved)::int AS cores,
             SUM(p.int_gpus_reserved)::int AS gpus, COUNT(*)::int AS procs
        FROM proc p JOIN job j ON j.pk_job = p.pk_job JOIN host h ON h.pk_host = p.pk_host
       WHERE NOT p.b_local AND p.pk_job = ${job}
       GROUP BY j.pk_show, h.pk_alloc`;
    expect(booked).toEqual([{ pk_show: show, pk_alloc: alloc, cores: 300, gpus: 1, procs: 2 }]);
    const [p] = await sql`SELECT count(DISTINCT pk_show)::int AS shows FROM proc WHERE pk_job = ${job}`;
    expect(p).toEqual({ shows: 1 });
    const points = await sql`SELECT 1 FROM point WHERE pk_show = ${show} AND pk_dept = ${dept}`;
    expect(points).toHaveLength(1);
  });

  it('createFarm builds a mid-size farm set-based, with the described shape', async () => {
    const spec = {
      shows: 10,
      allocs: 5,
      foldersPerShow: 20,
      jobsPerFolder: 10,
      hostsPerAlloc: 100,
      procs: 5_000,
      managedShows: 6,
      depts: 3,
      burstCenticores: 50_000,
      folderMaxCoresCenticores: 20_000,
      jobMaxGpus: 4,
      procCoresCenticores: 200,
      procGpus: 1,
      finishedJobEvery: 10,
      localProcEvery: 50,
    };
    const ids = await createFarm(sql, spec);
    expect(ids.subscriptions).toHaveLength(50);
    expect(ids.folders).toHaveLength(200);
    expect(ids.jobs).toHaveLength(2_000);
    expect(ids.hosts).toHaveLength(500);
    expect(ids.procs).toHaveLength(5_000);

    const count = async (query: postgres.PendingQuery<postgres.Row[]>) =>
      ((await query)[0] as { n: number }).n;
    const shows = ids.shows;
    expect(
      await count(
        sql`SELECT count(*)::int n FROM show WHERE pk_show = ANY(${shows}) AND b_scheduler_managed`,
      ),
    ).toBe(6);
    expect(
      await count(
        sql`SELECT count(*)::int n FROM subscription WHERE pk_show = ANY(${shows}) AND int_burst = 50000`,
      ),
    ).toBe(50);
    expect(
      await count(sql`
        SELECT count(*)::int n FROM folder f JOIN folder_resource fr ON fr.pk_folder_resource = f.pk_folder
         WHERE f.pk_show = ANY(${shows}) AND fr.int_max_cores = 20000 AND fr.int_max_gpus = -1`),
    ).toBe(200);
    expect(
      await count(sql`
        SELECT count(*)::int n FROM job j JOIN job_resource jr ON jr.pk_job_resource = j.pk_job
         WHERE j.pk_show = ANY(${shows}) AND jr.int_max_cores = 10000 AND jr.int_max_gpus = 4`),
    ).toBe(2_000);
    expect(
      await count(
        sql`SELECT count(*)::int n FROM job WHERE pk_show = ANY(${shows}) AND str_state = 'FINISHED'`,
      ),
    ).toBe(200);
    expect(await count(sql`SELECT count(*)::int n FROM layer_resource WHERE pk_job = ANY(${ids.jobs})`)).toBe(
      2_000,
    );
    expect(await count(sql`SELECT count(*)::int n FROM point WHERE pk_show = ANY(${shows})`)).toBe(30);

    // Every proc is consistent with its frame, layer, job and show; 1 in 50 is local.
    const [procs] = await sql`
      SELECT count(*)::int AS n, count(*) FILTER (WHERE p.b_local)::int AS local,
             count(*) FILTER (WHERE f.pk_job = p.pk_job AND f.pk_layer = p.pk_layer
                                AND l.pk_job = p.pk_job AND j.pk_show = p.pk_show)::int AS consistent,
             sum(p.int_cores_reserved)::int AS cores, sum(p.int_gpus_reserved)::int AS gpus
        FROM proc p
        JOIN frame f ON f.pk_frame = p.pk_frame
        JOIN layer l ON l.pk_layer = p.pk_layer
        JOIN job j ON j.pk_job = p.pk_job
       WHERE p.pk_show = ANY(${shows})`;
    expect(procs).toEqual({ n: 5_000, local: 100, consistent: 5_000, cores: 1_000_000, gpus: 5_000 });

    // Procs spread over every job and every host; each lands on a subscribed (show, alloc).
    const [spread] = await sql`
      SELECT count(DISTINCT p.pk_job)::int AS jobs, count(DISTINCT p.pk_host)::int AS hosts,
             count(*) FILTER (WHERE s.pk_subscription IS NULL)::int AS unsubscribed
        FROM proc p
        JOIN host h ON h.pk_host = p.pk_host
        LEFT JOIN subscription s ON s.pk_show = p.pk_show AND s.pk_alloc = h.pk_alloc
       WHERE p.pk_show = ANY(${shows})`;
    expect(spread).toEqual({ jobs: 2_000, hosts: 500, unsubscribed: 0 });

    // A second farm in the same database does not collide with the first.
    const other = await createFarm(sql, { ...spec, procs: 10 });
    expect(other.procs).toHaveLength(10);
  });
});
