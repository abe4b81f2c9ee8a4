/**
 * Daemon addresses: `http(s)://host[:port][/prefix]`, `unix:/path`, `unix:///path` or `/path`.
 */
import { AccountingClientError } from './errors.js';

export const DEFAULT_DAEMON_URL = 'http://127.0.0.1:7878';

export type DaemonAddress =
  { kind: 'http'; url: URL; describe: string } | { kind: 'unix'; socketPath: string; describe: string };

/** The URL for messages: credentials replaced by `***`. */
function describeUrl(url: URL): string {
  const shown = new URL(url.href);
  if (shown.username !== '') shown.username = '***';
  if (shown.password !== '') shown.password = '***';
  return shown.href.replace(/\/$/, '');
}

/** Parse a daemon address; throws an {@link AccountingClientError} of kind `usage` naming the problem. */
export function parseDaemonAddress(
  input: string,
  describe: (url: URL) => string = describeUrl,
): DaemonAddress {
  const usage = (message: string) => new AccountingClientError('usage', message);
  const value = input.trim();
  if (value === '') throw usage('daemon address is empty');
  if (value.startsWith('unix:') || value.startsWith('/')) {
    const socketPath = value.startsWith('unix:')
      ? value.slice('unix:'.length).replace(/^\/\/(?=\/)/, '')
      : value;
    if (!socketPath.startsWith('/')) {
      throw usage(`daemon socket path must be absolute (unix:/path/to.sock), got "${socketPath}"`);
    }
    return { kind: 'unix', socketPath, describe: `unix:${socketPath}` };
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usage('daemon address is not a valid URL (expected http://HOST:PORT or unix:/PATH)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usage(`daemon address must use http:, https: or unix:, not ${url.protocol}`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw usage('daemon address must not have a query string or fragment');
  }
  return { kind: 'http', url, describe: describe(url) };
}
