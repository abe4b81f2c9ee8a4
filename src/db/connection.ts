/**
 * Opening PostgreSQL connections: the small query pool, and dedicated single sessions (the
 * listener, the N=1 lock) that must never be shared with pooled queries.
 */
import postgres, { type Sql } from 'postgres';
import type { ListenerConnector } from '../service/listener.js';

export interface ConnectionTarget {
  /** Contains the password when given: never print it. */
  url?: string;
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  options?: postgres.Options<{}>;
}

/**
 * Default seconds to wait for a connection (PGCONNECT_TIMEOUT wins).
 * postgres.js's own default is 30 s, and it can lose a reconnect's startup message and then
 * stall until that timeout: a shorter one bounds how long a pass, a re-lock or a CLI command
 * waits on a dead server.
 */
const CONNECT_TIMEOUT_S = 10;

const SESSION_ATTRS_PARAM = /([?&])target_session_attrs=([^&#]*)&?/;

/** What postgres.js accepts as `target_session_attrs`. */
type SessionAttrs = NonNullable<ConnectionTarget['options']>['target_session_attrs'];

/**
 * The `target_session_attrs` to give postgres.js, and the URL without it (the option wins over
 * the URL only when it is set, so the URL's own value must go for 'any' to mean "no check").
 *
 * - `read-write` becomes `primary`. libpq's read-write refuses a hot standby; postgres.js 3.4.9
 *   only looks at `default_transaction_read_only`, which a PostgreSQL >= 14 standby reports as
 *   `off`, so it would connect to the standby: the lock taken there, LISTEN and every write
 *   failing until the promotion (node_modules/postgres/src/connection.js `tryNext`). `primary`
 *   checks `in_hot_standby`, the part that matters for following a failover.
 * - `any` (libpq's default, which postgres.js rejects) becomes no check.
 * Precedence as in postgres.js: the option, then the URL, then PGTARGETSESSIONATTRS.
 */
export function sessionAttrsFor(target: ConnectionTarget): {
  url: string | undefined;
  attrs: SessionAttrs;
} {
  const match = target.url === undefined ? null : SESSION_ATTRS_PARAM.exec(target.url);
  const url =
    target.url === undefined || match === null
      ? target.url
      : target.url.replace(SESSION_ATTRS_PARAM, (_m, lead: string) => lead).replace(/[?&]$/, '');
  const given =
    target.options?.target_session_attrs ??
    (match === null ? undefined : decodeURIComponent(match[2]!)) ??
    (process.env.PGTARGETSESSIONATTRS || undefined);
  if (given === undefined || given === 'any') return { url, attrs: undefined };
  return {
    url,
    attrs: (given === 'read-write' ? 'primary' : given) as SessionAttrs,
  };
}

/**
 * Bound `work` (a first round trip) by the connect timeout. With several hosts postgres.js 3.4.9
 * never fails a connection attempt: every error (refused, a standby refused by
 * target_session_attrs) moves on to the next host, round and round, and the query waits until
 * some host qualifies. A one-shot command must not wait forever for a primary that is not coming:
 * after the timeout it fails with CONNECT_TIMEOUT, as an unreachable single host does.
 */
export async function withConnectDeadline<T>(target: ConnectionTarget, work: Promise<T>): Promise<T> {
  const seconds = target.options?.connect_timeout ?? CONNECT_TIMEOUT_S;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new Error(`no usable server answered within ${seconds} s`);
      reject(Object.assign(error, { code: 'CONNECT_TIMEOUT' }));
    }, seconds * 1000);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function open(
  target: ConnectionTarget,
  options: postgres.Options<Record<string, postgres.PostgresType>>,
): Sql {
  const { url, attrs } = sessionAttrsFor(target);
  const merged = {
    onnotice: () => undefined,
    connect_timeout: CONNECT_TIMEOUT_S,
    ...target.options,
    ...options,
    ...(attrs === undefined ? {} : { target_session_attrs: attrs }),
  };
  return url === undefined ? postgres(merged) : postgres(url, merged);
}

export function openPool(target: ConnectionTarget, max: number, applicationName = 'cueacct'): Sql {
  return open(target, { max, connection: { application_name: applicationName } });
}

/**
 * One session for as long as the process lives (no idle or lifetime recycling).
 *
 * `fetch_types: false`: these sessions (the listener, the N=1 lock) send only scalar
 * parameters, and postgres.js 3.4.9 runs its array-type fetch on every (re)connect as a
 * promise nobody awaits: a backend terminated in that window (`pg_terminate_backend`, a
 * database restart) becomes an unhandled rejection that ends the process. Without the fetch
 * there is no such window.
 */
export function openSession(
  target: ConnectionTarget,
  applicationName: string,
  hooks: { onclose?: () => void; onnotify?: (channel: string, payload: string) => void } = {},
): Sql {
  return open(target, {
    max: 1,
    idle_timeout: 0,
    max_lifetime: null,
    fetch_types: false,
    connection: { application_name: applicationName },
    ...(hooks as object),
  });
}

export function listenerConnector(
  target: ConnectionTarget,
  applicationName = 'cueacct-listener',
): ListenerConnector {
  return (hooks) => openSession(target, applicationName, hooks);
}

/** Whether a PostgreSQL server answers `SELECT 1` at `url` within `timeoutMs` (never throws). */
export async function serverAnswers(url: string, timeoutMs: number): Promise<boolean> {
  const sql = postgres(url, {
    max: 1,
    connect_timeout: Math.ceil(timeoutMs / 1000),
    onnotice: () => undefined,
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    return await Promise.race([sql`SELECT 1`.then(() => true), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
    await sql.end({ timeout: 0 });
  }
}
