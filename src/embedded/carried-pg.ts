/**
 * The PostgreSQL server binaries carried inside the single executable (carried-assets.ts),
 * unpacked on first use into a per-version cache directory and verified before every start.
 *
 * - Cache: `$XDG_CACHE_HOME/cueacct/pg-<version>`, else `~/.cache/cueacct/pg-<version>`. As
 *   root, PostgreSQL runs as an unprivileged user that must be able to reach the binaries; when it
 *   cannot enter that directory (`/root` is mode 0700), `/var/cache/cueacct/pg-<version>` instead.
 *   The files stay owned by whoever unpacked them, with the archive's modes (0755 binaries and
 *   libraries, 0644 data): readable and runnable by the server user, writable by no one else.
 * - Atomic: unpacked into a temp sibling (`.pg-<version>.<pid>.*`), verified, then renamed into
 *   place. A crash leaves only the temp dir (removed by the next unpack once its pid is gone);
 *   two processes unpacking at once both finish, one rename wins and the other uses its result.
 * - Verified: the sha256 of both assets against the values compiled in at build time (a damaged
 *   executable is refused), and every unpacked file against the manifest's sha256, mode and size
 *   before every start. A cache that does not match (edited, truncated, another build's) is
 *   replaced by a fresh unpack.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';

import { usageError } from '../cli/errors.js';
import {
  ARCHIVE_ASSET,
  MANIFEST_ASSET,
  parseManifest,
  sha256,
  unpackArchive,
  verifyTree,
  type PgManifest,
} from '../packaging/pg-archive.js';
import type { CarriedPg } from './carried-assets.js';
import { isRunning } from './process.js';

/** Cache parent used as root when the server user cannot reach the user's cache dir. */
export const ROOT_CACHE_DIR = '/var/cache/cueacct';

interface Logger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/**
 * The cache directory of the carried binaries of `version` (see the module comment).
 * `canReach(dir)` says whether the server user can reach a directory; omitted: it can.
 */
export function carriedCacheDir(
  version: string,
  env: NodeJS.ProcessEnv = process.env,
  canReach: (dir: string) => boolean = () => true,
  home: string = homedir(),
): string {
  const cache = env.XDG_CACHE_HOME?.startsWith('/') ? env.XDG_CACHE_HOME : join(home, '.cache');
  const dir = join(cache, 'cueacct', `pg-${version}`);
  return canReach(dir) ? dir : join(ROOT_CACHE_DIR, `pg-${version}`);
}

function damaged(asset: string): Error {
  return usageError(
    `the PostgreSQL binaries inside this executable are damaged (the sha256 of its ${asset} asset is not ` +
      `the one recorded at build time): rebuild or copy cueacct again, or set CUEACCT_PG_BIN`,
  );
}

/**
 * Makes sure `dir` holds the carried binaries, verified; returns its `bin` directory.
 * Unpacks (atomically) when `dir` is missing or does not match the manifest.
 */
export async function ensureCarriedPg(pg: CarriedPg, dir: string, logger: Logger): Promise<string> {
  const manifestBytes = pg.readManifest();
  if (sha256(manifestBytes) !== pg.manifestSha256) throw damaged(MANIFEST_ASSET);
  const manifest = parseManifest(manifestBytes);
  // Attempt 1 may find a damaged cache and replace it; attempt 2 may lose the rename race and
  // verify the winner's tree. A tree that fails again is an error, not a loop.
  for (let attempt = 1; attempt <= 3; attempt++) {
    if (existsSync(dir)) {
      const problem = verifyTree(dir, manifest);
      if (problem === undefined) return join(dir, 'bin');
      if (attempt === 3) throw new Error(`the PostgreSQL binaries in ${dir} fail verification: ${problem}`);
      logger.warn(
        { dir, problem },
        'cached PostgreSQL binaries do not match this executable: unpacking again',
      );
      await discard(dir);
    }
    if (await unpackInto(pg, manifest, dir, logger)) return join(dir, 'bin');
  }
  throw new Error(`could not unpack the PostgreSQL binaries into ${dir}`);
}

const tempPrefix = (dir: string) => `.${basename(dir)}.`;

/**
 * Unpacks into a temp sibling of `dir`, verifies, renames into place. Returns false when another
 * process put a tree there first (the caller verifies that one).
 */
async function unpackInto(
  pg: CarriedPg,
  manifest: PgManifest,
  dir: string,
  logger: Logger,
): Promise<boolean> {
  const started = Date.now();
  const archive = pg.readArchive();
  if (sha256(archive) !== pg.archiveSha256) throw damaged(ARCHIVE_ASSET);
  const parent = dirname(dir);
  await mkdir(parent, { recursive: true, mode: 0o755 });
  await removeAbandonedTemps(parent, tempPrefix(dir));
  const temp = await mkdtemp(join(parent, `${tempPrefix(dir)}${process.pid}.`));
  try {
    await unpackArchive(temp, manifest, archive);
    const problem = verifyTree(temp, manifest);
    if (problem !== undefined) throw new Error(`unpacked PostgreSQL binaries fail verification: ${problem}`);
    await chmod(temp, 0o755); // mkdtemp made it 0700: the server user must enter it
    try {
      await rename(temp, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
      throw err;
    }
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
  logger.info(
    { dir, files: manifest.entries.length, ms: Date.now() - started },
    'unpacked the PostgreSQL binaries carried by the executable',
  );
  return true;
}

/** Moves a tree out of the way (atomically), then deletes it. Gone already: fine. */
async function discard(dir: string): Promise<void> {
  const aside = `${join(dirname(dir), tempPrefix(dir))}${process.pid}.discard-${Date.now()}`;
  try {
    await rename(dir, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  await rm(aside, { recursive: true, force: true });
}

/** Removes temp dirs of unpacks whose process is gone (a crash or SIGKILL half-way). */
async function removeAbandonedTemps(parent: string, prefix: string): Promise<void> {
  for (const name of await readdir(parent)) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length).split('.')[0]);
    if (Number.isInteger(pid) && pid > 0 && !isRunning(pid))
      await rm(join(parent, name), { recursive: true, force: true });
  }
}
