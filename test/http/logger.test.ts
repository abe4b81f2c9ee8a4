import { Writable } from 'node:stream';

import { describe, expect, it } from 'vitest';

import { createLogger } from '../../src/observability/logger.js';

function memory(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe('createLogger', () => {
  it('writes JSON lines with the name and level', () => {
    const out = memory();
    const log = createLogger({ level: 'info', name: 'cueacct', pretty: false, destination: out.stream });
    log.info({ port: 7878 }, 'listening');
    log.debug('not shown');
    const lines = out.text().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, name: 'cueacct', port: 7878, msg: 'listening' });
  });

  it('censors tokens, passwords and authorization headers, and passwords in URLs and errors', () => {
    const out = memory();
    const log = createLogger({ level: 'debug', pretty: false, destination: out.stream });
    log.info(
      {
        token: 'tok-1',
        password: 'pw-1',
        flags: { token: 'tok-2', password: 'pw-2' },
        headers: { authorization: 'Bearer tok-3', cookie: 'c-1' },
        req: { headers: { authorization: 'Bearer tok-4' } },
        url: 'postgres://cue:pw-3@db:5432/cue',
        databaseUrl: 'postgresql://cue:pw-4@db/cue?sslmode=require',
      },
      'config',
    );
    log.error({ err: new Error('connect postgres://cue:pw-5@db/cue failed') }, 'boom');
    const text = out.text();
    for (const secret of [
      'tok-1',
      'tok-2',
      'tok-3',
      'tok-4',
      'c-1',
      'pw-1',
      'pw-2',
      'pw-3',
      'pw-4',
      'pw-5',
    ]) {
      expect(text).not.toContain(secret);
    }
    const [config, boom] = text
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(config).toMatchObject({
      token: '***',
      flags: { token: '***', password: '***' },
      headers: { authorization: '***' },
      url: 'postgres://cue:***@db:5432/cue',
      databaseUrl: 'postgresql://cue:***@db/cue?sslmode=require',
    });
    expect(boom).toMatchObject({
      err: { type: 'Error', message: 'connect postgres://cue:***@db/cue failed' },
    });
  });

  it('pretty-prints synchronously when asked, still redacted', () => {
    const out = memory();
    const log = createLogger({ level: 'info', pretty: true, destination: out.stream });
    log.info({ token: 'tok-9' }, 'hello there');
    // Written before info() returned: no transport, no worker thread.
    const text = out.text();
    expect(text).toMatch(/INFO.*hello there/);
    expect(text).not.toContain('tok-9');
    expect(() => JSON.parse(text)).toThrow();
  });
});
