import { describe, expect, it } from 'vitest';

import { resolveDatabaseConfig } from '../../src/cli/database-config.js';
import { CliError } from '../../src/cli/errors.js';
import { ExitCode } from '../../src/cli/exit-codes.js';

const PG_ENV = {
  PGHOST: 'pghost',
  PGPORT: '6543',
  PGUSER: 'pguser',
  PGPASSWORD: 'pgpass',
  PGDATABASE: 'pgdb',
};

function usageFailure(fn: () => unknown): CliError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    expect((err as CliError).exitCode).toBe(ExitCode.USAGE);
    return err as CliError;
  }
  throw new Error('expected a usage error');
}

describe('resolveDatabaseConfig precedence', () => {
  it('--database-url wins over DATABASE_URL and PG*', () => {
    const c = resolveDatabaseConfig({
      flag: 'postgres://flag:fpw@flaghost/flagdb',
      env: { DATABASE_URL: 'postgres://env:epw@envhost/envdb', ...PG_ENV },
    });
    expect(c.source).toBe('--database-url');
    expect(c.url).toBe('postgres://flag:fpw@flaghost/flagdb');
    expect(c.options).toEqual({});
    expect(c.describe).toBe('postgres://flag:***@flaghost/flagdb (from --database-url)');
  });

  it('DATABASE_URL wins over PG*', () => {
    const c = resolveDatabaseConfig({ env: { DATABASE_URL: 'postgres://env:epw@envhost/envdb', ...PG_ENV } });
    expect(c.source).toBe('DATABASE_URL');
    expect(c.url).toBe('postgres://env:epw@envhost/envdb');
    expect(c.describe).not.toContain('epw');
  });

  it('PG* variables when there is no URL', () => {
    const c = resolveDatabaseConfig({ env: { DATABASE_URL: '', ...PG_ENV, PGSSLMODE: 'require' } });
    expect(c.source).toBe('PG* variables');
    expect(c.url).toBeUndefined();
    expect(c.options).toMatchObject({
      host: 'pghost',
      port: 6543,
      user: 'pguser',
      password: 'pgpass',
      database: 'pgdb',
      ssl: 'require',
    });
    expect(c.describe).toBe('postgres://pguser@pghost:6543/pgdb (from PG* variables)');
    expect(c.describe).not.toContain('pgpass');
  });

  it('postgres.js defaults with nothing set', () => {
    const c = resolveDatabaseConfig({ env: { USER: 'alice' } });
    expect(c.source).toBe('defaults');
    expect(c.options).toEqual({});
    expect(c.describe).toBe('postgres://alice@localhost:5432/alice (postgres.js defaults)');
  });

  it('PGSSLMODE applies to a URL without sslmode, not over the URL', () => {
    expect(
      resolveDatabaseConfig({ env: { DATABASE_URL: 'postgres://h/db', PGSSLMODE: 'disable' } }).options,
    ).toEqual({
      ssl: false,
    });
    expect(
      resolveDatabaseConfig({
        env: { DATABASE_URL: 'postgres://h/db?sslmode=require', PGSSLMODE: 'disable' },
      }).options,
    ).toEqual({});
  });

  it('accepts multi-host URLs, IPv6 hosts and unix-socket PGHOST', () => {
    expect(resolveDatabaseConfig({ flag: 'postgres://u:p@h1:5432,h2:5433/db' }).source).toBe(
      '--database-url',
    );
    expect(resolveDatabaseConfig({ flag: 'postgresql://u@[::1]:5432/db' }).url).toBe(
      'postgresql://u@[::1]:5432/db',
    );
    const c = resolveDatabaseConfig({ env: { PGHOST: '/var/run/postgresql', PGUSER: 'cue' } });
    expect(c.options.host).toBe('/var/run/postgresql');
    expect(c.describe).toContain('[socket /var/run/postgresql]');
  });
});

describe('resolveDatabaseConfig validation: usage error (exit 2), never the password', () => {
  const SECRET = 'hunter2xyz';
  it.each([
    [`mysql://u:${SECRET}@h/db`, /must start with postgres:\/\/ or postgresql:\/\/, not mysql:\/\//],
    [`postgres//u:${SECRET}@h/db`, /must start with postgres:\/\//],
    [`postgres://u:${SECRET}@h:notaport/db`, /invalid port/],
    [`postgres://u:${SECRET}@h:99999/db`, /invalid port/],
    [`postgres://u:12/${SECRET}@h/db`, /'@' after the host/],
    [`postgres://u:${SECRET}?x@h/db`, /'@' after the host/],
    [`postgres://u:a#${SECRET}@h/db`, /'@' after the host/],
    [`postgres://u:${SECRET}@h:5432,h2:x/db`, /invalid port/],
    [`postgres://u:${SECRET}@h/db?sslmode=sometimes`, /sslmode .* must be one of/],
    [`postgres://u:${SECRET}%zz@h/db`, /invalid percent-encoding/],
    [`postgres://u:${SECRET}@h h/db`, /not a valid URL/],
  ])('%s', (url, problem) => {
    for (const input of [{ flag: url }, { env: { DATABASE_URL: url } }]) {
      const err = usageFailure(() => resolveDatabaseConfig(input));
      expect(err.message).toMatch(problem);
      expect(err.message).toContain(input.flag !== undefined ? '--database-url' : 'DATABASE_URL');
      expect(`${err.message} ${err.detail ?? ''}`).not.toContain(SECRET);
    }
  });

  it('rejects an empty flag, a bad PGPORT and a bad PGSSLMODE', () => {
    expect(usageFailure(() => resolveDatabaseConfig({ flag: ' ' })).message).toMatch(/empty/);
    expect(usageFailure(() => resolveDatabaseConfig({ env: { PGPORT: 'x' } })).message).toMatch(/PGPORT/);
    expect(usageFailure(() => resolveDatabaseConfig({ env: { PGSSLMODE: 'x' } })).message).toMatch(
      /PGSSLMODE/,
    );
  });
});
