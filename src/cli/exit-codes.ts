/**
 * Process exit codes of every `cueacct` command (SPEC §3).
 *
 * - `OK` (0): the command did what was asked.
 * - `PROBLEM` (1): the command ran, and the check it performs found a problem (drift, a failed
 *   probe). Also used for unexpected internal errors.
 * - `USAGE` (2): usage or configuration error (bad flag, malformed URL, rejected token, a command
 *   that is not available in this build).
 * - `UNREACHABLE` (3): the database or the daemon cannot be reached.
 */
export const ExitCode = {
  OK: 0,
  PROBLEM: 1,
  USAGE: 2,
  UNREACHABLE: 3,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
