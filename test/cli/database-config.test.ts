import { describe, expect, it } from 'vitest';

import { resolveDatabaseConfig } from '../../src/cli/database-config.js';
import { sessionAttrsFor } from '../../src/db/connection.js';
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

describe('resolveDatabaseConfig: several hosts and target_session_attrs (primary failover)', () => {
  const MULTI = 'postgres://cue:s3cretpw@db1:5432,db2:5433/cuebot?target_session_attrs=read-write';

  it('keeps a multi-host URL whole for postgres.js and redacts only the password', () => {
    for (const input of [{ flag: MULTI }, { env: { DATABASE_URL: MULTI } }]) {
      const c = resolveDatabaseConfig(input);
      expect(c.url).toBe(MULTI);
      expect(c.options).toEqual({});
      expect(c.describe).toMatch(
        /^postgres:\/\/cue:\*\*\*@db1:5432,db2:5433\/cuebot\?target_session_attrs=read-write \(from (--database-url|DATABASE_URL)\)$/,
      );
    }
  });

  it('PGTARGETSESSIONATTRS applies to a URL without target_session_attrs, not over the URL', () => {
    const plain = resolveDatabaseConfig({
      flag: 'postgres://u@h1,h2/db',
      env: { PGTARGETSESSIONATTRS: 'read-write' },
    });
    expect(plain.options).toEqual({ target_session_attrs: 'read-write' });
    expect(plain.describe).toBe(
      'postgres://u@h1,h2/db (from --database-url, target_session_attrs=read-write from PGTARGETSESSIONATTRS)',
    );
    const own = resolveDatabaseConfig({ flag: MULTI, env: { PGTARGETSESSIONATTRS: 'standby' } });
    expect(own.options).toEqual({});
  });

  it('PGHOST=h1,h2 with one PGPORT, or one port per host, and PGTARGETSESSIONATTRS', () => {
    const one = resolveDatabaseConfig({
      env: {
        PGHOST: 'db1,db2',
        PGPORT: '6432',
        PGUSER: 'cue',
        PGPASSWORD: 'pw123',
        PGTARGETSESSIONATTRS: 'read-write',
      },
    });
    expect(one.source).toBe('PG* variables');
    expect(one.options).toMatchObject({ host: 'db1:6432,db2:6432', target_session_attrs: 'read-write' });
    expect(one.options.port).toBeUndefined();
    expect(one.describe).toBe(
      'postgres://cue@db1:6432,db2:6432/cue?target_session_attrs=read-write (from PG* variables)',
    );
    expect(one.describe).not.toContain('pw123');

    const each = resolveDatabaseConfig({ env: { PGHOST: 'db1, db2', PGPORT: '5432,5433', PGUSER: 'cue' } });
    expect(each.options.host).toBe('db1:5432,db2:5433');
    const dflt = resolveDatabaseConfig({ env: { PGHOST: 'db1,db2', PGUSER: 'cue' } });
    expect(dflt.options.host).toBe('db1:5432,db2:5432');
    // Only PGTARGETSESSIONATTRS set: still the PG* source, on the default host.
    const attrsOnly = resolveDatabaseConfig({ env: { PGTARGETSESSIONATTRS: 'primary', USER: 'alice' } });
    expect(attrsOnly.source).toBe('PG* variables');
    expect(attrsOnly.describe).toBe(
      'postgres://alice@localhost:5432/alice?target_session_attrs=primary (from PG* variables)',
    );
  });

  it.each([
    [
      { flag: 'postgres://u:hunter2xyz@h1,h2/db?target_session_attrs=master' },
      /target_session_attrs in the database URL from --database-url must be one of any, read-write/,
    ],
    [{ env: { PGTARGETSESSIONATTRS: 'writable' } }, /^PGTARGETSESSIONATTRS must be one of/],
    [{ env: { PGTARGETSESSIONATTRS: 'any' } }, /PGTARGETSESSIONATTRS=any is not supported/],
    [{ env: { PGHOST: 'h1,h2,h3', PGPORT: '1,2' } }, /PGPORT lists 2 ports for 3 hosts/],
    [{ env: { PGHOST: 'h1', PGPORT: '1,2' } }, /PGPORT lists 2 ports but PGHOST names one host/],
    [{ env: { PGHOST: 'h1,,h2' } }, /PGHOST has an empty host name/],
    [{ env: { PGHOST: 'h1,/var/run/postgresql' } }, /no socket, no IPv6/],
    [{ env: { PGHOST: 'h1,h2', PGPORT: '5432,x' } }, /PGPORT must be a port number/],
  ])('usage error for %j', (input, problem) => {
    const err = usageFailure(() => resolveDatabaseConfig(input));
    expect(err.message).toMatch(problem);
    expect(err.message).not.toContain('hunter2xyz');
  });
});

describe('sessionAttrsFor: what postgres.js is asked to check', () => {
  it('read-write becomes primary (postgres.js alone would accept a hot standby); any becomes no check', () => {
    const multi = 'postgres://u@h1,h2/db';
    expect(sessionAttrsFor({ url: `${multi}?target_session_attrs=read-write` })).toEqual({
      url: multi,
      attrs: 'primary',
    });
    expect(sessionAttrsFor({ url: `${multi}?sslmode=disable&target_session_attrs=any&x=1` })).toEqual({
      url: `${multi}?sslmode=disable&x=1`,
      attrs: undefined,
    });
    expect(sessionAttrsFor({ url: `${multi}?target_session_attrs=standby&x=1` })).toEqual({
      url: `${multi}?x=1`,
      attrs: 'standby',
    });
    // The option (PGTARGETSESSIONATTRS spelled out by resolveDatabaseConfig) wins over the URL.
    expect(
      sessionAttrsFor({
        url: `${multi}?target_session_attrs=standby`,
        options: { target_session_attrs: 'read-write' },
      }),
    ).toEqual({ url: multi, attrs: 'primary' });
    expect(sessionAttrsFor({ options: { host: 'h1:1,h2:2', target_session_attrs: 'read-write' } })).toEqual({
      url: undefined,
      attrs: 'primary',
    });
    expect(sessionAttrsFor({ url: multi })).toEqual({ url: multi, attrs: undefined });
  });
});
