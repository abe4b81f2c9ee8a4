/**
 * `serve --embedded`: a private PostgreSQL in a persistent data directory, a `cueacct_demo`
 * database on it holding the test schema and the demo farm, and the URL to serve on.
 */
import postgres from 'postgres';

import { embeddedDataDir, startCluster, type ClusterLogger, type EmbeddedCluster } from './cluster.js';
import { ensureDemoFarm } from './demo-farm.js';

/** Name of the demo database in the embedded cluster. */
export const DEMO_DATABASE = 'cueacct_demo';

export interface StartEmbeddedOptions {
  /** Data directory (`--data-dir`); default: see {@link embeddedDataDir}. */
  dataDir?: string;
  logger: ClusterLogger;
  /** Server binaries directory; default `CUEACCT_PG_BIN`, else the search in cluster.ts. */
  binDir?: string;
  /** Environment for the defaults (XDG_STATE_HOME, CUEACCT_PG_BIN). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

export interface EmbeddedDatabase {
  /** URL of the demo database (contains the cluster's password: never print it unredacted). */
  url: string;
  /** The data directory in use. */
  dataDir: string;
  /** Whether this start built the demo farm (false: reused from an earlier run). */
  created: boolean;
  cluster: EmbeddedCluster;
  /** Shut the cluster down (call last, after the daemon closed its connections). */
  stop(): Promise<void>;
}

/** Start the embedded cluster, create the demo database and farm if missing, return its URL. */
export async function startEmbedded(options: StartEmbeddedOptions): Promise<EmbeddedDatabase> {
  const env = options.env ?? process.env;
  const dataDir = embeddedDataDir(options.dataDir, env);
  const cluster = await startCluster({
    dataDir,
    logger: options.logger,
    env,
    ...(options.binDir !== undefined ? { binDir: options.binDir } : {}),
  });
  try {
    const admin = postgres(cluster.url, { max: 1, onnotice: () => {} });
    try {
      const [row] = await admin<{ present: boolean }[]>`
        SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = ${DEMO_DATABASE}) AS present`;
      if (!row?.present) await admin.unsafe(`CREATE DATABASE ${DEMO_DATABASE}`);
    } finally {
      await admin.end({ timeout: 5 });
    }
    const url = new URL(cluster.url);
    url.pathname = `/${DEMO_DATABASE}`;
    const sql = postgres(url.toString(), { max: 1, onnotice: () => {} });
    let created: boolean;
    try {
      ({ created } = await ensureDemoFarm(sql));
    } finally {
      await sql.end({ timeout: 5 });
    }
    options.logger.info(
      { dataDir, port: cluster.port, database: DEMO_DATABASE, created },
      created ? 'demo farm created' : 'demo farm reused from an earlier run',
    );
    return { url: url.toString(), dataDir, created, cluster, stop: cluster.stop };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}
