/**
 * Entry point of the single executable (`npm run package` → dist/cueacct; see docs/packaging.md).
 * bin/build-sea.mjs bundles this file with esbuild into one CommonJS script for Node's SEA.
 *
 * Inside the executable nothing can be loaded from disk (`require` only loads built-ins, and
 * there is no package.json or node_modules), so the package.json data is compiled in by the
 * bundler (`__CUEACCT_PJSON__`) and the command map is handed to oclif directly (runCli).
 * The bundle's banner sets OCLIF_DISABLE_ENGINE_WARNING before oclif is evaluated.
 *
 * The PostgreSQL binaries the executable carries (docs/packaging.md) are registered with their
 * build-time checksums (`__CUEACCT_PG__`) and readers of the SEA assets; nothing reads the
 * assets unless `serve --embedded` needs them.
 *
 * Compiled by `npm run build` for type checking only; not runnable outside the bundle.
 */
import { dirname } from 'node:path';
import { getRawAsset } from 'node:sea';
import type { Interfaces } from '@oclif/core';

import { commands } from '../../commands/index.js';
import { runCli } from '../cli/main.js';
import {
  ARCHIVE_ASSET,
  MANIFEST_ASSET,
  registerCarriedPg,
  type CarriedPgInfo,
} from '../embedded/carried-assets.js';

declare const __CUEACCT_PJSON__: Interfaces.PJSON;
declare const __CUEACCT_PG__: CarriedPgInfo;

// getRawAsset: the bytes in place, no copy (only read, never written).
const asset = (key: string) => new Uint8Array(getRawAsset(key) as ArrayBuffer);
registerCarriedPg({
  ...__CUEACCT_PG__,
  readManifest: () => asset(MANIFEST_ASSET),
  readArchive: () => asset(ARCHIVE_ASSET),
});

// oclif wants a root directory; nothing is read from it (pjson and commands are given).
void runCli({ root: dirname(process.execPath), pjson: __CUEACCT_PJSON__, commands });
