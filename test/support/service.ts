/** Build and drive a real AccountingService against a harness database. */
import pino, { type Logger } from 'pino';
import type { Sql } from 'postgres';
import {
  createAlloc,
  createFolder,
  createHost,
  createJob,
  createProc,
  createShow,
  createSubscription,
} from '../../src/db/fixtures.js';
import { listenerConnector, openPool } from '../../src/db/connection.js';
import { Metrics } from '../../src/observability/metrics.js';
import { AccountingService, DEFAULT_SERVICE_CONFIG, type ServiceConfig } from '../../src/service/service.js';

export interface RunningService {
  service: AccountingService;
  metrics: Metrics;
  pool: Sql;
  stop(): Promise<void>;
}

/** Intervals default to an hour so tests trigger every pass themselves. */
export async function startService(
  url: string,
  overrides: Partial<ServiceConfig> = {},
  logger: Logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
): Promise<RunningService> {
  const pool = openPool({ url }, 4);
  const metrics = new Metrics({ defaultMetrics: false });
  const service = new AccountingService(
    pool,
    listenerConnector({ url }),
    {
      ...DEFAULT_SERVICE_CONFIG,
      version: 'test',
      recomputeIntervalMs: 3_600_000,
      reseedIntervalMs: 3_600_000,
      showsIntervalMs: 3_600_000,
      ...overrides,
    },
    logger,
    metrics,
  );
  await service.start();
  return {
    service,
    metrics,
    pool,
    stop: async () => {
      await service.stop();
      await pool.end({ timeout: 1 });
    },
  };
}

export interface SmallFarm {
  show: string;
  alloc: string;
  folder: string;
  job: string;
  host: string;
}

/** One show on one alloc with one folder and one job; caps in whole cores. */
export async function createSmallFarm(
  sql: Sql,
  options: {
    managed: boolean;
    burst: number;
    folderCores?: number;
    folderGpus?: number;
    jobCores?: number;
    jobGpus?: number;
    showName?: string;
  },
): Promise<SmallFarm> {
  const show = await createShow(sql, {
    managed: options.managed,
    ...(options.showName ? { name: options.showName } : {}),
  });
  const alloc = await createAlloc(sql);
  await createSubscription(sql, { show, alloc, burstCenticores: options.burst * 100 });
  const folder = await createFolder(sql, {
    show,
    maxCoresCenticores: options.folderCores === undefined ? -1 : options.folderCores * 100,
    maxGpus: options.folderGpus ?? -1,
  });
  const job = await createJob(sql, {
    folder,
    maxCoresCenticores: options.jobCores === undefined ? -1 : options.jobCores * 100,
    maxGpus: options.jobGpus ?? -1,
  });
  const host = await createHost(sql, { alloc, coresCenticores: 100_000, gpus: 100 });
  return { show, alloc, folder, job, host };
}

/**
 * A managed small farm (burst 10) whose job runs exactly at its cap: one 4-core proc under a job
 * cap of 4, so every booking on the job is refused by the job cap.
 */
export async function createFarmAtJobCap(sql: Sql, showName: string): Promise<SmallFarm> {
  const farm = await createSmallFarm(sql, { managed: true, burst: 10, jobCores: 4, showName });
  await createProc(sql, { host: farm.host, job: farm.job, coresCenticores: 400 });
  return farm;
}

export function bookingFor(farm: SmallFarm, cores: number, gpus = 0) {
  return { show: farm.show, alloc: farm.alloc, folder: farm.folder, job: farm.job, cores, gpus };
}
