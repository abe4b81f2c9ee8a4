import { describe, expect, it } from 'vitest';

import { redactText, redactUrl, urlPassword } from '../../src/cli/redact.js';

describe('redactUrl', () => {
  it.each([
    ['postgres://cue:s3cret@db.example:5432/cuebot', 'postgres://cue:***@db.example:5432/cuebot'],
    ['postgresql://cue:s3cret@db/cuebot?sslmode=require', 'postgresql://cue:***@db/cuebot?sslmode=require'],
    ['postgres://cue@db/cuebot', 'postgres://cue@db/cuebot'],
    ['postgres://db/cuebot', 'postgres://db/cuebot'],
    ['postgres://cue:@db/cuebot', 'postgres://cue:***@db/cuebot'],
    // unencoded '@', '/', '?' and '#' in the password: everything up to the last '@' is userinfo
    ['postgres://cue:p@ss/w?o#rd@db/cuebot', 'postgres://cue:***@db/cuebot'],
    ['postgres://cue:p%40ss@h1:5432,h2:5433/cuebot', 'postgres://cue:***@h1:5432,h2:5433/cuebot'],
    ['postgres://user:pass@host/db?password=x', 'postgres://user:***@host/db?password=***'],
    [
      'postgres://user@host/db?sslmode=disable&password=x&application_name=a',
      'postgres://user@host/db?sslmode=disable&password=***&application_name=a',
    ],
    ['postgres://host/db?PASSWORD=x#frag', 'postgres://host/db?PASSWORD=***#frag'],
    ['postgres://host/db?sslpassword=x', 'postgres://host/db?sslpassword=***'],
    ['host=db user=cue password=s3cret dbname=cuebot', 'host=db user=cue password=*** dbname=cuebot'],
    ["host=db password = 'with space' dbname=x", 'host=db password = *** dbname=x'],
    ['http://127.0.0.1:7878', 'http://127.0.0.1:7878'],
    ['not a url at all', 'not a url at all'],
  ])('%s → %s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });

  it('never leaves the password in the output', () => {
    for (const password of ['s3cret', 'p@ss', 'a/b?c#d', 'x:y', 'pässwörd']) {
      const url = `postgres://cue:${password}@db/cuebot`;
      expect(redactUrl(url)).not.toContain(password);
      expect(redactUrl(`postgres://cue:${encodeURIComponent(password)}@db/x`)).not.toContain(
        encodeURIComponent(password),
      );
    }
  });
});

describe('urlPassword', () => {
  it('extracts and decodes the password', () => {
    expect(urlPassword('postgres://cue:p%40ss@db/x')).toBe('p@ss');
    expect(urlPassword('postgres://cue@db/x')).toBeUndefined();
    expect(urlPassword('nothing')).toBeUndefined();
  });
});

describe('redactText', () => {
  it('redacts URLs inside free text and given secrets', () => {
    const text = 'connect to postgres://cue:s3cret@db/x failed; token abcd1234 rejected';
    expect(redactText(text, ['abcd1234'])).toBe(
      'connect to postgres://cue:***@db/x failed; token *** rejected',
    );
  });

  it('scrubs percent-encoded secrets and ignores tiny ones', () => {
    expect(redactText('u=p%40ss', ['p@ss'])).toBe('u=***');
    expect(redactText('a b c', ['a', undefined])).toBe('a b c');
  });
});
