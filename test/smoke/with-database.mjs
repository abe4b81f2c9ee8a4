#!/usr/bin/env node
// Runs a command with a throwaway database holding the schema and the demo farm, then drops it.
//
//   node test/smoke/with-database.mjs COMMAND [ARGS...]     (needs `npm run build`)
//
// The database URL is appended to the arguments (and set as DATABASE_URL). The server is
// TEST_DATABASE_URL's, else the local one at 127.0.0.1:5432 when it answers, else a throwaway
// cluster started here (src/embedded/cluster.ts; CUEACCT_TEST_EMBEDDED=1 forces it) — the same
// choice as the test harness.
// Exits with the command's exit code.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const LOCAL_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const load = (path) => import(pathToFileURL(join(ROOT, 'build', path)).href);

const [command, ...args] = process.argv.slice(2);
if (!command) {
  process.stderr.write('usage: node test/smoke/with-database.mjs COMMAND [ARGS...]\n');
  process.exit(2);
}

const { default: postgres } = await import('postgres');
const { startCluster } = await load('src/embedded/cluster.js');
const { ensureDemoFarm } = await load('src/embedded/demo-farm.js');
const { serverAnswers } = await load('src/db/connection.js');

let adminUrl = process.env.TEST_DATABASE_URL;
let cluster;
if (!adminUrl && process.env.CUEACCT_TEST_EMBEDDED !== '1' && (await serverAnswers(LOCAL_URL, 2_000))) {
  adminUrl = LOCAL_URL;
}
if (!adminUrl) {
  cluster = await startCluster();
  adminUrl = cluster.url;
  process.stderr.write(`with-database: no server answers; using a throwaway cluster (${cluster.binDir})\n`);
}

const name = `cueacct_smoke_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
let code = 1;
try {
  await admin.unsafe(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  try {
    const sql = postgres(url.toString(), { max: 1, onnotice: () => {} });
    try {
      await ensureDemoFarm(sql);
    } finally {
      await sql.end({ timeout: 5 });
    }
    const child = spawn(command, [...args, url.toString()], {
      stdio: 'inherit',
      env: { ...process.env, DATABASE_URL: url.toString() },
    });
    const forward = (signal) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    code = await new Promise((resolveCode) =>
      child.once('exit', (c, signal) => resolveCode(c ?? (signal ? 128 : 1))),
    );
  } finally {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
} finally {
  await admin.end({ timeout: 5 });
  await cluster?.stop();
}
process.exit(code);
