/**
 * Where the PostgreSQL connection comes from (SPEC §3), in this order:
 *   1. `--database-url`
 *   2. `DATABASE_URL`
 *   3. the standard libpq variables: PGHOST, PGPORT, PGUSER (or PGUSERNAME), PGPASSWORD,
 *      PGDATABASE, PGSSLMODE, PGAPPNAME, PGCONNECT_TIMEOUT, PGTARGETSESSIONATTRS
 *   4. postgres.js defaults (localhost:5432, the OS user, database = user).
 *
 * Several hosts, as libpq takes them, for following a primary failover: in the URL
 * (`postgres://h1:5432,h2:5432/db?target_session_attrs=read-write`) or as PGHOST=h1,h2 with one
 * PGPORT for all or one per host. postgres.js tries them in turn; `target_session_attrs` (URL, or
 * PGTARGETSESSIONATTRS when the URL does not say) picks the server — see `sessionAttrsFor` in
 * src/db/connection.ts for how read-write is enforced.
 *
 * postgres.js (3.4.9) reads PGHOST, PGPORT, PGUSER/PGUSERNAME, PGPASSWORD, PGDATABASE, PGAPPNAME and
 * PGCONNECT_TIMEOUT from `process.env` by itself, also to fill parts a URL leaves out — but not
 * PGSSLMODE (it reads a non-standard PGSSL instead). So the options returned here spell out the
 * PG* values of the given environment and translate PGSSLMODE to postgres.js's `ssl` option.
 *
 * Invalid input is a usage error (exit 2) that names the problem and never echoes the URL.
 */
import os from 'node:os';

import type postgres from 'postgres';

import { usageError } from './errors.js';
import { redactUrl } from './redact.js';

// postgres.js's own default for its type map; `{}` is what `postgres()` infers without custom types.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export type DatabaseOptions = postgres.Options<{}>;

export type DatabaseSource = '--database-url' | 'DATABASE_URL' | 'PG* variables' | 'defaults';

export interface DatabaseConfig {
  /** The connection URL, when one was given (flag or DATABASE_URL). Contains the password: never print it. */
  url?: string;
  /** Options for `postgres(url, options)` / `postgres(options)`. May contain the password. */
  options: DatabaseOptions;
  source: DatabaseSource;
  /** For messages: `postgres://user:***@host:port/db (from DATABASE_URL)`; never contains a password. */
  describe: string;
}

export interface ResolveDatabaseInput {
  /** Value of `--database-url`, if given. */
  flag?: string | undefined;
  /** Environment to read DATABASE_URL / PG* from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
}

const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
type SslMode = (typeof SSL_MODES)[number];

/** libpq `sslmode` → postgres.js `ssl`. */
function sslOption(mode: SslMode): DatabaseOptions['ssl'] {
  switch (mode) {
    case 'disable':
      return false;
    case 'allow': // libpq tries plain first; postgres.js cannot, 'prefer' is the closest that works both ways
    case 'prefer':
      return 'prefer';
    case 'require':
      return 'require';
    case 'verify-ca': // verify the chain, not the host name
      return { rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case 'verify-full':
      return 'verify-full';
  }
}

function parseSslMode(value: string, where: string): SslMode {
  const mode = value.trim().toLowerCase();
  if (!(SSL_MODES as readonly string[]).includes(mode)) {
    throw usageError(`${where} must be one of ${SSL_MODES.join(', ')}, got "${value}"`);
  }
  return mode as SslMode;
}

/** libpq's values; postgres.js takes all but `any` (the default: no check), which connection.ts drops. */
const SESSION_ATTRS = ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby'] as const;
type SessionAttrs = (typeof SESSION_ATTRS)[number];

function parseSessionAttrs(value: string, where: string): SessionAttrs {
  const attrs = value.trim().toLowerCase();
  if (!(SESSION_ATTRS as readonly string[]).includes(attrs)) {
    throw usageError(`${where} must be one of ${SESSION_ATTRS.join(', ')}, got "${value}"`);
  }
  return attrs as SessionAttrs;
}

/**
 * PGHOST (one host or several, comma-separated) with PGPORT (one port for all hosts, or one per
 * host, as libpq): the `host` / `port` options postgres.js takes (several hosts as `h1:p1,h2:p2`).
 */
function pgHosts(
  hostValue: string | undefined,
  portValue: string | undefined,
): { host?: string; port?: number; describe: string } {
  const hosts = (hostValue ?? 'localhost').split(',').map((h) => h.trim());
  const ports = portValue === undefined ? [] : portValue.split(',').map((p) => parsePort(p, 'PGPORT'));
  if (hosts.length === 1) {
    if (ports.length > 1) throw usageError(`PGPORT lists ${ports.length} ports but PGHOST names one host`);
    const host = hosts[0]!;
    if (host === '') throw usageError('PGHOST has an empty host name');
    const shown = host.startsWith('/') ? `[socket ${host}]` : host;
    return {
      ...(hostValue === undefined ? {} : { host }),
      ...(ports[0] === undefined ? {} : { port: ports[0] }),
      describe: `${shown}:${ports[0] ?? 5432}`,
    };
  }
  if (hosts.some((h) => h === '')) throw usageError('PGHOST has an empty host name in its list');
  // postgres.js reads a host list as `host[:port],…` and has no socket paths or IPv6 literals in it.
  if (hosts.some((h) => h.includes('/') || h.includes(':'))) {
    throw usageError(
      'PGHOST: a list of several hosts takes host names or IPv4 addresses only (no socket, no IPv6)',
    );
  }
  if (ports.length > 1 && ports.length !== hosts.length) {
    throw usageError(
      `PGPORT lists ${ports.length} ports for ${hosts.length} hosts in PGHOST (give one, or one per host)`,
    );
  }
  const list = hosts.map((h, i) => `${h}:${ports.length > 1 ? ports[i] : (ports[0] ?? 5432)}`).join(',');
  return { host: list, describe: list };
}

function parsePort(value: string, where: string): number {
  if (!/^\d{1,5}$/.test(value.trim()) || Number(value) < 1 || Number(value) > 65535) {
    throw usageError(`${where} must be a port number 1-65535, got "${value}"`);
  }
  return Number(value);
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

/**
 * Check a connection URL the way postgres.js will read it (it accepts several comma-separated
 * hosts, which WHATWG `URL` does not). Returns the parsed URL of the first host.
 */
function validateUrl(raw: string, source: DatabaseSource): URL {
  const where = `database URL from ${source}`;
  const schemeMatch = /^([a-z][a-z0-9+.-]*):\/\//i.exec(raw);
  if (!schemeMatch) throw usageError(`${where} must start with postgres:// or postgresql://`);
  const scheme = schemeMatch[1]!.toLowerCase();
  if (scheme !== 'postgres' && scheme !== 'postgresql') {
    throw usageError(`${where} must start with postgres:// or postgresql://, not ${scheme}://`);
  }
  const encodeHint = "percent-encode '/', '?', '#' and '@' in the user name and password";
  const rest = raw.slice(raw.indexOf('://') + 3);
  // An '@' after the host part means a password with an unencoded '/', '?' or '#': postgres.js would
  // read part of the password as the database name (and print it in errors). Never echo any of it.
  const authorityEnd = rest.search(/[/?#]/);
  if (authorityEnd >= 0 && rest.lastIndexOf('@') > authorityEnd) {
    throw usageError(`${where} has an '@' after the host (${encodeHint})`);
  }
  // Same host extraction as postgres.js: between '://' and the first '/' or '?', after the last '@'.
  let hosts = rest.split(/[?/]/)[0] ?? '';
  hosts = hosts.slice(hosts.lastIndexOf('@') + 1);
  for (const host of hosts.split(',')) {
    const port = /^(?:\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(host)?.[1];
    if (port !== undefined && port !== '' && !(/^\d{1,5}$/.test(port) && +port >= 1 && +port <= 65535)) {
      throw usageError(`${where} has an invalid port (expected 1-65535)`);
    }
  }
  let url: URL;
  try {
    const firstHost = hosts.split(',')[0] ?? '';
    url = new URL(hosts === '' ? raw : raw.replace(hosts, firstHost));
  } catch {
    throw usageError(`${where} is not a valid URL (${encodeHint})`);
  }
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
    decodeURIComponent(url.pathname);
  } catch {
    throw usageError(`${where} has an invalid percent-encoding`);
  }
  const sslmode = url.searchParams.get('sslmode');
  if (sslmode !== null) parseSslMode(sslmode, `sslmode in the ${where}`);
  const attrs = url.searchParams.get('target_session_attrs');
  if (attrs !== null) parseSessionAttrs(attrs, `target_session_attrs in the ${where}`);
  return url;
}

function osUser(env: NodeJS.ProcessEnv): string {
  const fromEnv = env.USERNAME ?? env.USER ?? env.LOGNAME;
  if (fromEnv) return fromEnv;
  try {
    return os.userInfo().username;
  } catch {
    return 'postgres';
  }
}

/** Resolve the database connection; throws a usage error (exit 2) for malformed input. */
export function resolveDatabaseConfig(input: ResolveDatabaseInput = {}): DatabaseConfig {
  const env = input.env ?? process.env;
  const sslModeEnv = nonEmpty(env.PGSSLMODE);
  const envSsl = sslModeEnv === undefined ? undefined : sslOption(parseSslMode(sslModeEnv, 'PGSSLMODE'));
  const attrsEnv = nonEmpty(env.PGTARGETSESSIONATTRS);
  const envAttrs = attrsEnv === undefined ? undefined : parseSessionAttrs(attrsEnv, 'PGTARGETSESSIONATTRS');
  // postgres.js reads PGTARGETSESSIONATTRS itself and refuses `any`; an option cannot override it.
  if (envAttrs === 'any') {
    throw usageError('PGTARGETSESSIONATTRS=any is not supported (postgres.js): unset it, any is the default');
  }

  let url: string | undefined;
  let source: DatabaseSource;
  if (input.flag !== undefined) {
    if (input.flag.trim() === '') throw usageError('--database-url is empty');
    url = input.flag.trim();
    source = '--database-url';
  } else if (nonEmpty(env.DATABASE_URL) !== undefined) {
    url = env.DATABASE_URL!.trim();
    source = 'DATABASE_URL';
  } else {
    const anyPg = [
      'PGHOST',
      'PGPORT',
      'PGUSER',
      'PGUSERNAME',
      'PGPASSWORD',
      'PGDATABASE',
      'PGSSLMODE',
      'PGTARGETSESSIONATTRS',
    ].some((k) => nonEmpty(env[k]) !== undefined);
    source = anyPg ? 'PG* variables' : 'defaults';
  }

  if (url !== undefined) {
    const parsed = validateUrl(url, source);
    const options: DatabaseOptions = {};
    // libpq semantics: PGSSLMODE is the default when the URL does not say.
    if (envSsl !== undefined && !parsed.searchParams.has('sslmode') && !parsed.searchParams.has('ssl')) {
      options.ssl = envSsl;
    }
    // Likewise PGTARGETSESSIONATTRS (spelled out: postgres.js would read the process's own).
    let shownAttrs = '';
    if (envAttrs !== undefined && !parsed.searchParams.has('target_session_attrs')) {
      options.target_session_attrs = envAttrs;
      shownAttrs = `, target_session_attrs=${envAttrs} from PGTARGETSESSIONATTRS`;
    }
    return { url, options, source, describe: `${redactUrl(url)} (from ${source}${shownAttrs})` };
  }

  const options: DatabaseOptions = {};
  const hosts = pgHosts(nonEmpty(env.PGHOST), nonEmpty(env.PGPORT));
  const user = nonEmpty(env.PGUSER) ?? nonEmpty(env.PGUSERNAME);
  const password = env.PGPASSWORD;
  const database = nonEmpty(env.PGDATABASE);
  const connectTimeout = nonEmpty(env.PGCONNECT_TIMEOUT);
  if (hosts.host !== undefined) options.host = hosts.host;
  if (hosts.port !== undefined) options.port = hosts.port;
  if (envAttrs !== undefined) options.target_session_attrs = envAttrs;
  if (user !== undefined) options.user = user;
  if (password !== undefined && password !== '') options.password = password;
  if (database !== undefined) options.database = database;
  if (envSsl !== undefined) options.ssl = envSsl;
  if (connectTimeout !== undefined) {
    const seconds = Number(connectTimeout);
    if (!Number.isFinite(seconds) || seconds < 0) {
      throw usageError(`PGCONNECT_TIMEOUT must be a number of seconds, got "${connectTimeout}"`);
    }
    options.connect_timeout = seconds;
  }
  const appName = nonEmpty(env.PGAPPNAME);
  if (appName !== undefined) options.connection = { application_name: appName };

  const effectiveUser = user ?? osUser(env);
  const describe =
    `postgres://${effectiveUser}@${hosts.describe}/${database ?? effectiveUser}` +
    (envAttrs === undefined ? '' : `?target_session_attrs=${envAttrs}`) +
    (source === 'defaults' ? ' (postgres.js defaults)' : ' (from PG* variables)');
  return { options, source, describe };
}
