import { describe, expect, it } from 'vitest';
import { chooseAuth, isLocal } from '../../src/cli/auth-choice.js';
import { CliError } from '../../src/cli/errors.js';

const loopback = { host: '127.0.0.1', port: 7878 };
const anyAddress = { host: '0.0.0.0', port: 7878 };

describe('chooseAuth: serving without authentication is a choice', () => {
  it('refuses an empty token from the flag or the environment (exit 2), never "no auth"', () => {
    for (const input of [
      { token: '', tokenEnv: undefined },
      { token: undefined, tokenEnv: '' },
      { token: '  ', tokenEnv: undefined },
    ]) {
      let error: unknown;
      try {
        chooseAuth({ ...input, noAuth: false, listen: loopback });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(CliError);
      expect((error as CliError).exitCode).toBe(2);
      expect((error as Error).message).toMatch(/^the token is empty/);
    }
  });

  it('uses a token when given; refuses it together with --no-auth', () => {
    expect(chooseAuth({ token: 't', tokenEnv: 't', noAuth: false, listen: anyAddress })).toEqual({
      token: 't',
    });
    expect(() => chooseAuth({ token: 't', tokenEnv: undefined, noAuth: true, listen: loopback })).toThrow(
      /exclude each other/,
    );
  });

  it('without a token: loopback and Unix sockets serve quietly, other addresses need --no-auth and get a warning', () => {
    expect(chooseAuth({ token: undefined, tokenEnv: undefined, noAuth: false, listen: loopback })).toEqual({
      token: undefined,
    });
    expect(
      chooseAuth({ token: undefined, tokenEnv: undefined, noAuth: false, listen: { socket: '/run/x.sock' } }),
    ).toEqual({ token: undefined });
    expect(() =>
      chooseAuth({ token: undefined, tokenEnv: undefined, noAuth: false, listen: anyAddress }),
    ).toThrow(/0\.0\.0\.0:7878 is not a loopback address/);
    const chosen = chooseAuth({ token: undefined, tokenEnv: undefined, noAuth: true, listen: anyAddress });
    expect(chosen.token).toBeUndefined();
    expect(chosen.warning).toMatch(/^serving WITHOUT authentication on 0\.0\.0\.0:7878/);
  });

  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '::ffff:127.0.0.1']) {
      expect(isLocal({ host, port: 1 }), host).toBe(true);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1']) {
      expect(isLocal({ host, port: 1 }), host).toBe(false);
    }
  });
});
