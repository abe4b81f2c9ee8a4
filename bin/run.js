#!/usr/bin/env node
// The `cueacct` command. Runs the compiled CLI in ../build (npm run build) with the explicit
// command map and package.json handed to oclif directly: nothing is discovered from disk, and
// paths are resolved from this file, so it works from any working directory.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// oclif checks engines when @oclif/core is first evaluated: silence it before any import of it.
process.env.OCLIF_DISABLE_ENGINE_WARNING ??= '1';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

let modules;
try {
  modules = await Promise.all([import('../build/src/cli/main.js'), import('../build/commands/index.js')]);
} catch (err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes(join(root, 'build'))) {
    process.stderr.write(
      `cueacct: the CLI is not built (${join(root, 'build')} is missing): run \`npm run build\`\n`,
    );
    process.exit(2);
  }
  throw err;
}
const [{ runCli }, { commands }] = modules;

await runCli({ root, pjson, commands });
