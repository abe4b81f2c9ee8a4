/**
 * Keep secrets out of everything the CLI prints. Redaction errs on the side of hiding too much:
 * it works on raw strings, so it also covers URLs that do not parse.
 */

export const REDACTED = '***';

/** `password=…` style parameters: URL query strings and libpq keyword/value connection strings. */
const PASSWORD_PARAM = /(^|[?&;\s])((?:ssl)?pass(?:word)?|passwd)(\s*=\s*)('(?:[^'\\]|\\.)*'|[^&#\s]*)/gi;

/** Anything that looks like `scheme://…` inside free text. */
const URL_IN_TEXT = /[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi;

/** Secrets shorter than this are not scrubbed from free text (they would mangle every message). */
const MIN_SECRET_LENGTH = 3;

/**
 * Replace the password of a connection URL with `***`: the `user:password@` part (taking the LAST
 * `@`, since an unencoded password may itself contain `@`, `/`, `?` or `#`) and any
 * `password=` / `sslpassword=` parameter, in a query string or a libpq keyword/value string
 * (`host=db password=secret`). The user name, host, port, database and other parameters stay.
 */
export function redactUrl(url: string): string {
  let out = url;
  const schemeEnd = out.indexOf('://');
  if (schemeEnd >= 0) {
    const head = out.slice(0, schemeEnd + 3);
    const rest = out.slice(schemeEnd + 3);
    const at = rest.lastIndexOf('@');
    if (at >= 0) {
      const userinfo = rest.slice(0, at);
      const colon = userinfo.indexOf(':');
      if (colon >= 0) out = `${head}${userinfo.slice(0, colon)}:${REDACTED}${rest.slice(at)}`;
    }
  }
  return out.replace(
    PASSWORD_PARAM,
    (_m, lead: string, key: string, eq: string) => `${lead}${key}${eq}${REDACTED}`,
  );
}

/**
 * Redact free text (an error message, a detail block): every URL in it goes through
 * {@link redactUrl}, `password=` parameters are hidden, and every given secret value (a token, a
 * password), raw or percent-encoded, is replaced with `***`.
 */
export function redactText(text: string, secrets: Iterable<string | undefined> = []): string {
  let out = text.replace(URL_IN_TEXT, (url) => redactUrl(url));
  out = out.replace(
    PASSWORD_PARAM,
    (_m, lead: string, key: string, eq: string) => `${lead}${key}${eq}${REDACTED}`,
  );
  const values = new Set<string>();
  for (const secret of secrets) {
    if (secret === undefined || secret.length < MIN_SECRET_LENGTH) continue;
    values.add(secret);
    values.add(encodeURIComponent(secret));
  }
  // Longest first, so a secret that contains another one is replaced whole.
  for (const value of [...values].sort((a, b) => b.length - a.length)) out = out.split(value).join(REDACTED);
  return out;
}

/** The password part of `scheme://user:password@…` (percent-decoded when possible), if any. */
export function urlPassword(url: string): string | undefined {
  const schemeEnd = url.indexOf('://');
  if (schemeEnd < 0) return undefined;
  const rest = url.slice(schemeEnd + 3);
  const at = rest.lastIndexOf('@');
  if (at < 0) return undefined;
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(':');
  if (colon < 0) return undefined;
  const raw = userinfo.slice(colon + 1);
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}
