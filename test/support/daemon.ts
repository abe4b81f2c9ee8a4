/**
 * Start the real daemon (`cueacct serve`, the built CLI) as a child process against a
 * harness database, and talk to it. `npm test` builds first; when running vitest by hand,
 * run `npm run build` before.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest directory holding package.json (from test/support or build/test/support). */
function findRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) return path.resolve(from, '../..');
  }
}

export const ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
export const CLI = path.join(ROOT, 'bin', 'run.js');

export interface Daemon {
  /** Base URL, e.g. http://127.0.0.1:41234 (or unix:/path for --socket). */
  url: string;
  process: ChildProcess;
  pid: number;
  /** Everything the daemon wrote so far (JSON log lines). */
  output(): string;
  /** Send a signal and wait for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code when the process ends. */
  exited: Promise<number | null>;
}

export interface DaemonOptions {
  /** Omit for `--embedded`. */
  databaseUrl?: string;
  /** Extra flags; `--listen 127.0.0.1:0` is added unless --listen or --socket is given. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Wait for the "listening" log line (default), or only for the process to start. */
  waitForListening?: boolean;
  timeoutMs?: number;
  /** Flags for node itself, before the CLI (e.g. `--cpu-prof`, which NODE_OPTIONS refuses). */
  nodeArgs?: string[];
}

/** Spawn `cueacct serve` and resolve once it logs the address it listens on. */
export async function startDaemon(options: DaemonOptions): Promise<Daemon> {
  const database = options.databaseUrl === undefined ? [] : ['--database-url', options.databaseUrl];
  const args = ['serve', ...database, ...(options.args ?? [])];
  if (!args.includes('--listen') && !args.includes('--socket')) args.push('--listen', '127.0.0.1:0');
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, ...args], {
    env: { ...process.env, CUEACCT_LOG_LEVEL: 'debug', ...options.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const daemon: Daemon = {
    url: '',
    process: child,
    pid: child.pid!,
    output: () => output,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  if (options.waitForListening === false) return daemon;

  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    const address = listeningAddress(output);
    if (address !== undefined) {
      daemon.url = address;
      return daemon;
    }
    if (child.exitCode !== null)
      throw new Error(`daemon exited ${child.exitCode} before listening:\n${output}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`daemon did not listen in time:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function listeningAddress(output: string): string | undefined {
  for (const line of output.split('\n')) {
    if (!line.includes('"msg":"listening"')) continue;
    try {
      return (JSON.parse(line) as { address: string }).address;
    } catch {
      // a partial line: wait for the rest
    }
  }
  return undefined;
}

/** JSON request to the daemon (TCP only). */
export async function api(
  daemon: Pick<Daemon, 'url'>,
  method: string,
  urlPath: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${daemon.url}${urlPath}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Prometheus text and the like stay strings.
  }
  return { status: response.status, body: parsed };
}

/**
 * Wait until the daemon answers `/readyz` 200: after the lock's lock-delay and the bootstrap
 * (bookings before that answer 503 not_ready).
 */
export async function waitReady(
  daemon: Pick<Daemon, 'url'>,
  { timeoutMs = 30_000, token }: { timeoutMs?: number; token?: string } = {},
): Promise<void> {
  // No vitest import here: the plain-node bench and stress runner use this module too.
  const deadline = Date.now() + timeoutMs;
  while ((await api(daemon, 'GET', '/readyz', undefined, token)).status !== 200) {
    if (Date.now() > deadline) throw new Error(`daemon at ${daemon.url} not ready within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
