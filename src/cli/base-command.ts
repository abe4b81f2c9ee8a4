/**
 * Base class of every `cueacct` command: the `--verbose` flag and the one error path.
 *
 * A command throws (a {@link CliError} for expected failures); `catch` prints ONE redacted line
 * `cueacct <command>: <message>` on stderr (plus detail and stack with `--verbose`) and ends the
 * command with the failure's exit code through oclif's ExitError, which `runCli` (main.ts) turns
 * into the process exit code. Commands never call `process.exit` themselves.
 */
import { Command, Errors, type Interfaces } from '@oclif/core';

import { describeFailure, notAvailableError } from './errors.js';
import { verboseFlag } from './flags.js';
import { redactText, urlPassword } from './redact.js';

/** oclif's FlagOutput / ArgOutput (not exported by @oclif/core's public entry points). */
type Output = Record<string, unknown>;

/** Environment values that must never appear in output. */
function environmentSecrets(): (string | undefined)[] {
  const env = process.env;
  return [env.PGPASSWORD, env.CUEACCT_TOKEN, env.DATABASE_URL ? urlPassword(env.DATABASE_URL) : undefined];
}

export abstract class BaseCommand extends Command {
  static override baseFlags = {
    verbose: verboseFlag,
  };

  /** Set from `--verbose` once the flags are parsed. */
  protected verbose = false;
  /** Values scrubbed from every message: `--token`, the password of `--database-url`, … */
  private readonly secrets = new Set<string>();

  /** Register a value that must never be printed (added automatically for --token / --database-url). */
  protected addSecret(value: string | undefined): void {
    if (value) this.secrets.add(value);
  }

  protected override async parse<F extends Output, B extends Output, A extends Output>(
    options?: Interfaces.Input<F, B, A>,
    argv?: string[],
  ): Promise<Interfaces.ParserOutput<F, B, A>> {
    const output = await super.parse(options, argv);
    const flags = output.flags as Record<string, unknown>;
    this.verbose = flags.verbose === true;
    if (typeof flags.token === 'string') this.addSecret(flags.token);
    if (typeof flags['database-url'] === 'string') this.addSecret(urlPassword(flags['database-url']));
    return output;
  }

  /** Redact secrets from text meant for the terminal. */
  protected redact(text: string): string {
    return redactText(text, [...this.secrets, ...environmentSecrets()]);
  }

  /** Print a value as JSON on stdout (for `--json`). */
  protected printJson(value: unknown): void {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** Placeholder body of a command that a later build step implements: exit 2 with one line. */
  protected notAvailable(): never {
    throw notAvailableError();
  }

  protected override async catch(err: Interfaces.CommandError): Promise<never> {
    // `this.exit(n)` inside a command: not a failure to report.
    if (err instanceof Errors.ExitError) throw err;
    const id = this.id ?? this.ctor.id;
    const failure = describeFailure(err, id);
    // --verbose may not have been parsed (the failure can be the parse itself).
    const verbose = this.verbose || this.argv.includes('--verbose');
    process.stderr.write(`${this.redact(`cueacct ${id}: ${failure.message}`)}\n`);
    if (verbose && failure.detail) process.stderr.write(`${this.redact(failure.detail)}\n`);
    return this.exit(failure.exitCode);
  }
}
