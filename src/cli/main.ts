/**
 * Entry point of the `cueacct` CLI, shared by `bin/run.js` and the single-executable build.
 *
 * oclif is handed the package.json object and the command map directly: nothing is discovered or
 * `import()`ed from disk (inside a Node SEA only built-in modules can be loaded). For that, the
 * root Plugin is created here with its command cache filled in, and passed to oclif as the only
 * plugin, so oclif also skips user/dev/core plugin discovery.
 *
 * Set `OCLIF_DISABLE_ENGINE_WARNING=1` BEFORE importing this module (or anything importing
 * `@oclif/core`): oclif checks engines when its index module is first evaluated.
 *
 * Errors that escape a command (unknown command, a failure while loading) get the same one-line
 * treatment as inside a command (see errors.ts). This is the only place that calls
 * `process.exit`, and only for a failure; a successful run returns and lets Node exit.
 */
import { Errors, Plugin, flush, run, type Command, type Interfaces } from '@oclif/core';

import { describeFailure } from './errors.js';
import { redactText } from './redact.js';

export type CommandMap = Record<string, Command.Class>;

export interface RunCliOptions {
  /** Arguments after the executable (default `process.argv.slice(2)`). */
  argv?: string[];
  /** Package root: where oclif resolves relative paths and looks for a theme. Any directory in a SEA. */
  root: string;
  /** The parsed package.json (needs `name`, `version`, `oclif`). */
  pjson: Interfaces.PJSON;
  /** Command id → command class (commands/index.ts). */
  commands: CommandMap;
}

/** The root plugin with the commands preloaded (no module loading from `oclif.commands.target`). */
async function loadRootPlugin(options: RunCliOptions): Promise<Plugin> {
  const plugin = new Plugin({ isRoot: true, ignoreManifest: true, pjson: options.pjson, root: options.root });
  // oclif's explicit strategy reads `commandCache` before importing the target module.
  (plugin as unknown as { commandCache: CommandMap }).commandCache = options.commands;
  await plugin.load();
  const loaded = new Set(plugin.commandIDs);
  const missing = Object.keys(options.commands).filter((id) => !loaded.has(id));
  if (missing.length > 0) throw new Error(`oclif did not register commands: ${missing.join(', ')}`);
  return plugin;
}

/** Run the CLI. Resolves after a successful command; exits the process on failure. */
export async function runCli(options: RunCliOptions): Promise<void> {
  const argv = options.argv ?? process.argv.slice(2);
  try {
    const plugin = await loadRootPlugin(options);
    await run(argv, {
      root: options.root,
      pjson: options.pjson,
      plugins: new Map([[plugin.name, plugin]]),
    });
    await flush();
  } catch (err) {
    exitWithFailure(err, argv, options.commands);
  }
}

function exitWithFailure(err: unknown, argv: string[], commands: CommandMap): never {
  // A command already reported its failure (base-command.ts) and asked for this exit code.
  if (err instanceof Errors.ExitError) process.exit(err.oclif.exit ?? 1);
  const failure = describeFailure(err);
  let line = `cueacct: ${failure.message}`;
  // With topicSeparator ' ', oclif reads `cueacct serve extra` as the command id "serve:extra".
  const notFound = /^command (\S+) not found/.exec(failure.message);
  const [known, ...extra] = notFound?.[1]?.split(':') ?? [];
  if (known !== undefined && extra.length > 0 && Object.hasOwn(commands, known)) {
    line = `cueacct ${known}: unexpected argument${extra.length === 1 ? '' : 's'}: ${extra.join(' ')} (see: cueacct ${known} --help)`;
  }
  const secrets = [process.env.PGPASSWORD, process.env.CUEACCT_TOKEN];
  process.stderr.write(`${redactText(line, secrets)}\n`);
  if (argv.includes('--verbose') && failure.detail)
    process.stderr.write(`${redactText(failure.detail, secrets)}\n`);
  process.exit(failure.exitCode);
}
