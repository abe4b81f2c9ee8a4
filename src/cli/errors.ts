/**
 * Errors of the CLI and how they become ONE line on stderr plus an exit code.
 *
 * Policy (SPEC §3):
 * - Expected failures are {@link CliError}s: `cueacct <command>: <message>`, exit with their code.
 * - oclif's own parse/validation errors (unknown flag, missing argument, bad option): one line,
 *   exit 2 (`USAGE`), with a pointer to `--help`.
 * - Network errors that escape a command (ECONNREFUSED, DNS, timeouts): exit 3 (`UNREACHABLE`);
 *   PostgreSQL authentication / unknown database errors: exit 2 (configuration).
 * - Anything else is an unexpected internal error: one line `internal error: <message>` with a hint
 *   to rerun with `--verbose` (which prints the stack), exit 1 (`PROBLEM`).
 */
import { stripVTControlCharacters } from 'node:util';

import { ExitCode } from './exit-codes.js';
import { isUnreachableError } from '../db/errors.js';

export interface CliErrorOptions {
  /** Exit code; defaults to `ExitCode.PROBLEM`. */
  exitCode?: ExitCode;
  /** Extra lines shown only with `--verbose`. */
  detail?: string;
  cause?: unknown;
}

/** An expected failure: printed as one line, no stack trace, exits with `exitCode`. */
export class CliError extends Error {
  override name = 'CliError';
  readonly exitCode: ExitCode;
  readonly detail?: string;

  constructor(message: string, options: CliErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options.exitCode ?? ExitCode.PROBLEM;
    if (options.detail !== undefined) this.detail = options.detail;
  }
}

type HelperOptions = Omit<CliErrorOptions, 'exitCode'>;

/** Usage or configuration error (exit 2). */
export function usageError(message: string, options: HelperOptions = {}): CliError {
  return new CliError(message, { ...options, exitCode: ExitCode.USAGE });
}

/** The database or the daemon cannot be reached (exit 3). */
export function unreachableError(message: string, options: HelperOptions = {}): CliError {
  return new CliError(message, { ...options, exitCode: ExitCode.UNREACHABLE });
}

/** The check ran and found a problem (exit 1). */
export function problemError(message: string, options: HelperOptions = {}): CliError {
  return new CliError(message, { ...options, exitCode: ExitCode.PROBLEM });
}

/** A command whose implementation is not part of this build yet (exit 2). */
export function notAvailableError(): CliError {
  return usageError('not available yet in this build');
}

/** What to print and how to exit for a thrown value. */
export interface Failure {
  exitCode: ExitCode;
  /** One line, without the `cueacct <command>: ` prefix. Not yet redacted. */
  message: string;
  /** Shown with `--verbose` only (detail, cause chain, stack). Not yet redacted. */
  detail?: string;
  /** False for unexpected internal errors. */
  expected: boolean;
}

interface ErrorLike {
  message?: unknown;
  code?: unknown;
  stack?: unknown;
  detail?: unknown;
  cause?: unknown;
  oclif?: { exit?: unknown };
  parse?: unknown;
  args?: unknown;
}

/** PostgreSQL SQLSTATEs that are configuration errors on our side. */
const CONFIG_SQLSTATES: Record<string, string> = {
  '28P01': 'authentication failed',
  '28000': 'authorization rejected',
  '3D000': 'database does not exist',
};

/** How oclif rewrites the message of an error thrown by a flag's parse function. */
const FLAG_PARSE_MESSAGE = /^Parsing --\S+ ?\n/;

const PARSE_NOISE = [/^See more help with --help$/i, /^The following errors? occurred:?$/i];

/**
 * Squash a (possibly multi-line, possibly colored) message into one line: ANSI codes removed, oclif's
 * "See more help" / "The following errors occurred" boilerplate dropped, `name  description` lists
 * turned into `name (description)`, lines joined with `; ` (or a space after a line ending in `:`).
 */
export function oneLine(text: string): string {
  const lines = stripVTControlCharacters(text)
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0 && !PARSE_NOISE.some((re) => re.test(line)))
    .map((line) => line.replace(/^(\S+)\s{2,}(\S.*)$/, '$1 ($2)').replace(/^(Parsing --\S+)$/, '$1:'));
  let out = '';
  for (const line of lines) {
    if (out === '') out = line;
    else out += out.endsWith(':') ? ` ${line}` : `; ${line}`;
  }
  return out.replace(/\s+/g, ' ').trim();
}

function detailOf(err: ErrorLike): string | undefined {
  const parts: string[] = [];
  if (typeof err.detail === 'string' && err.detail !== '') parts.push(err.detail);
  if (typeof err.stack === 'string') parts.push(err.stack);
  let cause = err.cause;
  for (let depth = 0; cause !== undefined && cause !== null && depth < 5; depth++) {
    const c = cause as ErrorLike;
    parts.push(`caused by: ${typeof c.stack === 'string' ? c.stack : String(cause)}`);
    cause = c.cause;
  }
  return parts.length > 0 ? parts.join('\n') : undefined;
}

function isParseError(err: ErrorLike): boolean {
  return typeof err.parse === 'object' && err.parse !== null;
}

/**
 * Classify a thrown value. `command` (the command id) is used for the `--help` hint on usage
 * errors raised by oclif's parser.
 */
export function describeFailure(err: unknown, command?: string): Failure {
  const helpHint = `see: cueacct${command ? ` ${command}` : ''} --help`;
  if (err instanceof CliError) {
    const flagParse = FLAG_PARSE_MESSAGE.test(err.message);
    return {
      exitCode: err.exitCode,
      message: flagParse ? `${lowerFirst(oneLine(err.message))} (${helpHint})` : oneLine(err.message),
      expected: true,
      ...optionalDetail(detailOf(err)),
    };
  }
  if (typeof err !== 'object' || err === null) {
    return { exitCode: ExitCode.PROBLEM, message: `internal error: ${String(err)}`, expected: false };
  }
  const e = err as ErrorLike;
  const rawMessage = typeof e.message === 'string' ? e.message : String(err);

  // oclif CLIError (parser errors, `this.error()`, "command x not found"): carries oclif.exit.
  if (typeof e.oclif?.exit === 'number') {
    const code = e.oclif.exit;
    const exitCode = (Object.values(ExitCode) as number[]).includes(code)
      ? (code as ExitCode)
      : ExitCode.PROBLEM;
    let message = oneLine(rawMessage).replace(
      /Missing required flag (\w[\w-]*)/g,
      'missing required flag --$1',
    );
    if (Array.isArray(e.args) && rawMessage.startsWith('Missing ')) {
      const names = (e.args as { name?: unknown }[]).map((a) => String(a.name ?? '?').toUpperCase());
      message = `missing required argument${names.length === 1 ? '' : 's'}: ${names.join(', ')}`;
    }
    const usage = exitCode === ExitCode.USAGE || isParseError(e) || /^command \S+ not found$/.test(message);
    message = lowerFirst(message);
    return { exitCode, message: usage ? `${message} (${helpHint})` : message, expected: true };
  }

  // A flag's parse function failed (oclif rewrites the message of whatever it threw, even a
  // plain Error from its own Flags.integer, and rethrows it without an exit code): usage error.
  if (FLAG_PARSE_MESSAGE.test(rawMessage)) {
    return {
      exitCode: ExitCode.USAGE,
      message: `${lowerFirst(oneLine(rawMessage))} (${helpHint})`,
      expected: true,
    };
  }

  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code !== undefined && isUnreachableError(e)) {
    const message = oneLine(rawMessage);
    return {
      exitCode: ExitCode.UNREACHABLE,
      message: `cannot connect: ${message.includes(code) ? message : `${message} (${code})`}`,
      expected: true,
      ...optionalDetail(detailOf(e)),
    };
  }
  if (code !== undefined && CONFIG_SQLSTATES[code] !== undefined) {
    return {
      exitCode: ExitCode.USAGE,
      message: `${CONFIG_SQLSTATES[code]}: ${oneLine(rawMessage)}`,
      expected: true,
      ...optionalDetail(detailOf(e)),
    };
  }
  return {
    exitCode: ExitCode.PROBLEM,
    message: `internal error: ${oneLine(rawMessage) || 'unknown error'} (rerun with --verbose for details)`,
    expected: false,
    ...optionalDetail(detailOf(e)),
  };
}

/** "Nonexistent flag" → "nonexistent flag"; leaves "PGPORT …" alone. */
function lowerFirst(text: string): string {
  return text.replace(
    /^((?:Parsing --\S+: )?)([A-Z])(?=[a-z])/,
    (_m, lead: string, first: string) => `${lead.toLowerCase()}${first.toLowerCase()}`,
  );
}

function optionalDetail(detail: string | undefined): { detail?: string } {
  return detail ? { detail } : {};
}
