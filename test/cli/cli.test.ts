/**
 * The real CLI (bin/run.js + compiled commands) run as a child process: help, stubs, usage errors,
 * exit codes, one-line errors.
 */
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildCli, cleanEnv, runBuiltCli, type BuiltCli, type RunResult } from './built-cli.js';

let cli: BuiltCli;

beforeAll(() => {
  cli = buildCli();
}, 120_000);

afterAll(() => {
  cli?.cleanup();
});

const run = (args: string[], env?: Record<string, string>): Promise<RunResult> =>
  runBuiltCli(cli.bin, args, env ? { env } : {});

/** Exactly one line on stderr, no stack frames. */
function expectOneLine(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
  return lines[0]!;
}

const COMMANDS = ['serve', 'seed', 'recompute', 'inspect', 'flip-show', 'notify-test'] as const;

describe('cueacct --help', () => {
  it('lists the six commands and exits 0 without warnings', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const name of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${name}\\s`, 'm'));
  });

  it('prints the help with no arguments', async () => {
    const r = await run([]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('COMMANDS');
  });

  it('runs from any working directory, also when executed directly', async () => {
    expect(statSync(path.join(path.dirname(cli.bin), 'run.js')).mode & 0o111).not.toBe(0);
    const r = await new Promise<RunResult>((resolve) => {
      execFile(cli.bin, ['--help'], { cwd: '/', env: cleanEnv() }, (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('notify-test');
  });
});

const KEY_FLAGS: Record<(typeof COMMANDS)[number], string[]> = {
  serve: [
    '--listen',
    '--socket',
    '--token',
    '--lease',
    '--recompute-interval',
    '--reseed-interval',
    '--shows-interval',
    '--core-multiplier',
    '--standby',
    '--embedded',
    '--data-dir',
    '--simulate',
    '--log-level',
    '--pool-size',
    '--database-url',
    '--verbose',
    '127.0.0.1:7878',
    'CUEACCT_LISTEN',
    'CUEACCT_POOL_SIZE',
  ],
  seed: ['--show', '--daemon', '--json', '--database-url', '--verbose'],
  recompute: [
    '--dry-run',
    '--show',
    '--all-shows',
    '--json',
    '--daemon',
    '--token',
    'CUEACCT_DAEMON',
    '--database-url',
  ],
  inspect: [
    '--once',
    '--json',
    '--show',
    '--vertex',
    '--sort',
    '--interval',
    '--daemon',
    'subscription|folder|job',
  ],
  'flip-show': ['SHOW', '--to', 'scheduler|cuebot', '--dry-run', '--yes', '--wait', '--timeout', '--json'],
  'notify-test': [
    '--count',
    '--release',
    '--limit-change',
    '--timeout',
    '--json',
    '--database-url',
    '--daemon',
  ],
};

describe.each(COMMANDS)('cueacct %s', (name) => {
  it('--help exits 0 and shows its key flags and examples', async () => {
    const r = await run([name, '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const flag of KEY_FLAGS[name]) expect(r.stdout).toContain(flag);
    expect(r.stdout).toContain('EXAMPLES');
    expect(r.stdout).toContain('DESCRIPTION');
  });
});

describe('usage errors: exit 2, one line, no stack', () => {
  it('unknown flag', async () => {
    const r = await run(['serve', '--bogus']);
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(
      /^cueacct serve: nonexistent flag: --bogus \(see: cueacct serve --help\)$/,
    );
  });

  it('unknown command', async () => {
    const r = await run(['bogus']);
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/^cueacct: command bogus not found/);
  });

  it('unexpected argument', async () => {
    const r = await run(['serve', 'extra']);
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toBe(
      'cueacct serve: unexpected argument: extra (see: cueacct serve --help)',
    );
  });

  it('missing argument and missing required flag', async () => {
    let r = await run(['flip-show']);
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/^cueacct flip-show: missing required argument: SHOW/);
    r = await run(['flip-show', 'testshow']);
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toMatch(/^cueacct flip-show: missing required flag --to/);
  });

  it('invalid option value', async () => {
    const r = await run(['flip-show', 'testshow', '--to', 'nobody']);
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toContain('scheduler, cuebot');
  });

  it('invalid flag values, from the command line and from the environment', async () => {
    for (const [args, env, fragment] of [
      [['serve', '--listen', 'nowhere'], {}, 'parsing --listen: expected HOST:PORT'],
      [['serve'], { CUEACCT_LISTEN: 'nowhere' }, 'parsing --listen'],
      [['serve', '--pool-size', '0'], {}, 'parsing --pool-size'],
      [['inspect', '--interval', '0.1'], {}, 'must be at least 0.2'],
      [['notify-test', '--release', '{oops'], {}, 'not valid JSON'],
      [['recompute', '--daemon', 'ftp://host'], {}, 'daemon address must use http:'],
    ] as const) {
      const r = await run([...args], { ...env });
      expect(r.code, args.join(' ')).toBe(2);
      expect(expectOneLine(r.stderr)).toContain(fragment);
    }
  });

  it('mutually exclusive flags', async () => {
    const r = await run(['serve', '--listen', '127.0.0.1:1', '--socket', '/tmp/x.sock']);
    expect(r.code).toBe(2);
    expect(expectOneLine(r.stderr)).toContain('cannot also be provided');
  });
});

describe('--verbose', () => {
  it('adds the detail (stack) after the one-line message', async () => {
    const r = await run([
      'serve',
      '--database-url',
      'postgres://nobody:pw@127.0.0.1:1/none',
      '--listen',
      '127.0.0.1:0',
      '--verbose',
    ]);
    expect(r.code).toBe(3);
    const [first, ...rest] = r.stderr.split('\n');
    expect(first).toMatch(
      /^cueacct serve: cannot reach the database at postgres:\/\/nobody:\*\*\*@127\.0\.0\.1:1\/none .*ECONNREFUSED/,
    );
    expect(rest.join('\n')).toMatch(/^\s+at /m);
    expect(r.stderr).not.toContain(':pw@');
  });
});
