/**
 * Run the real CLI (bin/run.js → build/, so `npm run build` first, as for the daemon tests)
 * as a child process, plus small helpers shared by the operator-command tests.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import os from 'node:os';

import type { Sql } from 'postgres';
import { expect } from 'vitest';

import {
  createAlloc,
  createFolder,
  createHost,
  createJob,
  createProc,
  createShow,
  createSubscription,
} from '../../src/db/fixtures.js';

import { cleanEnv } from '../cli/built-cli.js';
import { CLI, api, type Daemon } from '../support/daemon.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `node bin/run.js ...args` with a clean environment (no DATABASE_URL, CUEACCT_*, PG*). */
export function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { cwd: os.tmpdir(), env: cleanEnv(env), timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end();
  });
}

/** Parse stdout as JSON (fails the test with the output when it is not). */
export function json(result: CliResult): any {
  try {
    return JSON.parse(result.stdout);
  } catch {
    throw new Error(
      `stdout is not JSON (exit ${result.code}):\n${result.stdout}\n--- stderr:\n${result.stderr}`,
    );
  }
}

/** Exactly one line on stderr, no stack trace; returns it. */
export function oneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((line) => line !== '');
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  return lines[0]!;
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

/** Daemon flags that leave every periodic pass to the test (they run only when asked). */
export const QUIET_DAEMON = [
  '--recompute-interval',
  '3600',
  '--reseed-interval',
  '3600',
  '--shows-interval',
  '3600',
];

export interface NamedFarm {
  show: string;
  showName: string;
  alloc: string;
  allocName: string;
  folder: string;
  folderName: string;
  job: string;
  jobName: string;
  host: string;
  procs: string[];
}

/**
 * One show with one subscription, folder and job, named after the show (`<show>.alloc`,
 * `<show>-folder`, `<show>-job`), and procs already running on it (Cuebot-booked). Caps in
 * whole cores; procs in centicores.
 */
export interface NamedFarmOptions {
  show: string;
  managed: boolean;
  burst: number;
  folderCores?: number;
  jobCores?: number;
  jobGpus?: number;
  procs?: { centicores: number; gpus?: number }[];
}

export async function createNamedFarm(sql: Sql, options: NamedFarmOptions): Promise<NamedFarm> {
  const showName = options.show;
  const show = await createShow(sql, { name: showName, managed: options.managed });
  const allocName = `${showName}.alloc`;
  const alloc = await createAlloc(sql, { name: allocName });
  await createSubscription(sql, { show, alloc, burstCenticores: options.burst * 100 });
  const folderName = `${showName}-folder`;
  const folder = await createFolder(sql, {
    show,
    name: folderName,
    maxCoresCenticores: options.folderCores === undefined ? -1 : options.folderCores * 100,
  });
  const jobName = `${showName}-job`;
  const job = await createJob(sql, {
    folder,
    name: jobName,
    maxCoresCenticores: options.jobCores === undefined ? -1 : options.jobCores * 100,
    maxGpus: options.jobGpus ?? -1,
  });
  const host = await createHost(sql, {
    alloc,
    name: `${showName}-host`.slice(0, 30),
    coresCenticores: 100_000,
    gpus: 100,
  });
  const procs: string[] = [];
  for (const proc of options.procs ?? []) {
    const created = await createProc(sql, {
      host,
      job,
      coresCenticores: proc.centicores,
      gpus: proc.gpus ?? 0,
    });
    procs.push(created.id);
  }
  return { show, showName, alloc, allocName, folder, folderName, job, jobName, host, procs };
}

/**
 * {@link createNamedFarm}, then served by a running daemon: the show is made managed only once
 * the farm is complete (a seed racing the fixture's inserts would see no subscription), and
 * the daemon refreshes its shows.
 */
export async function createServedFarm(
  sql: Sql,
  daemon: Pick<Daemon, 'url'>,
  options: Omit<NamedFarmOptions, 'managed'>,
): Promise<NamedFarm> {
  const farm = await createNamedFarm(sql, { ...options, managed: false });
  await sql`UPDATE show SET b_scheduler_managed = true WHERE pk_show = ${farm.show}`;
  await api(daemon, 'POST', '/v1/admin/refresh-shows');
  return farm;
}
