/**
 * The explicit command map of the `cueacct` CLI (package.json `oclif.commands`: strategy
 * "explicit", target ./build/commands/index.js, identifier `commands`). bin/run.js and the
 * single-executable build hand this map to oclif directly (src/cli/main.ts).
 *
 * Keep command modules cheap to import: every command is loaded for `--help`. Import heavy
 * dependencies (postgres, ink, the daemon) lazily inside `run()`.
 */
import type { Command } from '@oclif/core';

import FlipShow from './flip-show.js';
import Inspect from './inspect.js';
import NotifyTest from './notify-test.js';
import Recompute from './recompute.js';
import Seed from './seed.js';
import Serve from './serve.js';

export const commands = {
  serve: Serve,
  seed: Seed,
  recompute: Recompute,
  inspect: Inspect,
  'flip-show': FlipShow,
  'notify-test': NotifyTest,
} satisfies Record<string, Command.Class>;
