import { describe, expect, it } from 'vitest';

import {
  CliError,
  describeFailure,
  notAvailableError,
  oneLine,
  problemError,
  unreachableError,
  usageError,
} from '../../src/cli/errors.js';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { parseJsonValue, parseListenAddress, parseSeconds } from '../../src/cli/flags.js';

describe('CliError helpers', () => {
  it('carry their exit codes', () => {
    expect(usageError('x').exitCode).toBe(ExitCode.USAGE);
    expect(unreachableError('x').exitCode).toBe(ExitCode.UNREACHABLE);
    expect(problemError('x').exitCode).toBe(ExitCode.PROBLEM);
    expect(new CliError('x').exitCode).toBe(ExitCode.PROBLEM);
    expect(notAvailableError()).toMatchObject({ exitCode: 2, message: 'not available yet in this build' });
    expect(usageError('x', { detail: 'more' }).detail).toBe('more');
  });
});

describe('describeFailure', () => {
  it('expected failures keep their code and message', () => {
    const f = describeFailure(
      unreachableError('cannot reach daemon at x: ECONNREFUSED', { detail: 'GET /v1/status' }),
    );
    expect(f).toMatchObject({
      exitCode: 3,
      message: 'cannot reach daemon at x: ECONNREFUSED',
      expected: true,
    });
    expect(f.detail).toContain('GET /v1/status');
  });

  it('unexpected errors: exit 1, one line, a --verbose hint, the stack as detail', () => {
    const f = describeFailure(new TypeError('x is not a function\nsecond line'));
    expect(f.exitCode).toBe(ExitCode.PROBLEM);
    expect(f.expected).toBe(false);
    expect(f.message).toBe(
      'internal error: x is not a function; second line (rerun with --verbose for details)',
    );
    expect(f.detail).toMatch(/TypeError/);
  });

  it('escaped network errors → exit 3, PostgreSQL auth errors → exit 2', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    expect(describeFailure(refused)).toMatchObject({
      exitCode: 3,
      message: 'cannot connect: connect ECONNREFUSED 127.0.0.1:5432',
    });
    const auth = Object.assign(new Error('password authentication failed for user "cue"'), { code: '28P01' });
    expect(describeFailure(auth).exitCode).toBe(2);
  });

  it("oclif's parse errors become one usage line", () => {
    const err = Object.assign(new Error('Nonexistent flag: --bogus\nSee more help with --help'), {
      oclif: { exit: 2 },
      parse: {},
    });
    expect(describeFailure(err, 'serve')).toMatchObject({
      exitCode: 2,
      message: 'nonexistent flag: --bogus (see: cueacct serve --help)',
    });
    const flagParse = new Error(
      'Parsing --count \n\tExpected an integer but received: x\nSee more help with --help',
    );
    expect(describeFailure(flagParse, 'notify-test')).toMatchObject({
      exitCode: 2,
      message: 'parsing --count: expected an integer but received: x (see: cueacct notify-test --help)',
    });
  });

  it('oneLine strips colors and joins lines', () => {
    expect(
      oneLine('The following errors occurred:\n  \u001b[2ma\nb\u001b[22m\nSee more help with --help'),
    ).toBe('a; b');
    expect(oneLine('Missing 1 required arg:\nshow  Show name or id')).toBe(
      'Missing 1 required arg: show (Show name or id)',
    );
  });
});

describe('flag parsers', () => {
  it('parseSeconds', () => {
    expect(parseSeconds('15')).toBe(15);
    expect(parseSeconds('0.5s', { min: 0.2 })).toBe(0.5);
    expect(() => parseSeconds('abc')).toThrow(/number of seconds/);
    expect(() => parseSeconds('0.1', { min: 0.2 })).toThrow(/at least 0.2/);
    expect(() => parseSeconds('61', { max: 60 })).toThrow(/at most 60/);
  });

  it('parseListenAddress', () => {
    expect(parseListenAddress('127.0.0.1:7878')).toEqual({ host: '127.0.0.1', port: 7878 });
    expect(parseListenAddress('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListenAddress('localhost:80')).toEqual({ host: 'localhost', port: 80 });
    for (const bad of ['7878', 'host:', ':7878', 'host:99999', '::1:7878', 'h:p']) {
      expect(() => parseListenAddress(bad), bad).toThrow(CliError);
    }
  });

  it('parseJsonValue', () => {
    expect(parseJsonValue('{"a":1}')).toEqual({ a: 1 });
    expect(() => parseJsonValue('{a')).toThrow(/not valid JSON/);
  });
});
