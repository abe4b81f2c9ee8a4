import type { TestProject } from 'vitest/node';
import { serverAnswers } from '../../src/db/connection.js';
import { startCluster as startEmbeddedCluster } from '../../src/embedded/cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Admin URL (a superuser, database `postgres`) of the server the tests create databases on. */
    adminUrl: string;
  }
}

const LOCAL_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * Chooses the PostgreSQL server for the whole run: TEST_DATABASE_URL if set, else the local
 * server on 127.0.0.1:5432 if it answers within 2 s, else a throwaway cluster started here
 * (CUEACCT_TEST_EMBEDDED=1 forces that). Test files get the admin URL with inject('adminUrl').
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let url = process.env.TEST_DATABASE_URL;
  let stop = async () => {};
  if (!url && process.env.CUEACCT_TEST_EMBEDDED !== '1' && (await serverAnswers(LOCAL_URL, 2_000))) {
    url = LOCAL_URL;
  }
  if (!url) {
    const cluster = await startEmbeddedCluster();
    console.log(`tests use a throwaway PostgreSQL on port ${cluster.port} (${cluster.binDir})`);
    url = cluster.url;
    stop = cluster.stop;
  }
  project.provide('adminUrl', url);
  return stop;
}
