import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createHttpServer } from '../../src/http/server.js';
import { parseVertexQuery } from '../../src/http/vertex-query.js';
import { createLogger } from '../../src/observability/logger.js';
import { Metrics } from '../../src/observability/metrics.js';
import { rawExchange } from '../support/raw-http.js';
import { StoreBookingService } from './store-service.js';

describe('GET /v1/vertex query', () => {
  it('takes a kind and a key, each once; anything else is one clear message', () => {
    expect(parseVertexQuery(new URLSearchParams('kind=job&key=j-1'))).toEqual({
      ok: true,
      value: { kind: 'job', key: 'j-1' },
    });
    expect(parseVertexQuery(new URLSearchParams('kind=subscription&key=s%2Fa'))).toMatchObject({
      value: { key: 's/a' },
    });
    expect(parseVertexQuery(new URLSearchParams('kind=pool&key=x'))).toEqual({
      ok: false,
      message: 'kind: expected one of subscription, folder, job',
    });
    expect(parseVertexQuery(new URLSearchParams('kind=job'))).toMatchObject({ ok: false, message: /^key: / });
    expect(parseVertexQuery(new URLSearchParams('kind=job&key=a&key=b'))).toEqual({
      ok: false,
      message: 'key: given more than once',
    });
    expect(parseVertexQuery(new URLSearchParams('kind=job&key=a&top=1'))).toEqual({
      ok: false,
      message: 'query: an unexpected parameter (allowed: kind, key)',
    });
  });

  it('never echoes the name of an unexpected parameter: a pasted token reaches neither the answer nor the log', async () => {
    const token = randomBytes(24).toString('base64url');
    // A pasted bearer token, and a secret that looks like a field name (lower-case letters and _).
    const lowerCase = `sk_${Array.from(randomBytes(20), (b) => String.fromCharCode(97 + (b % 26))).join('')}`;
    for (const secret of [`Bearer-${token}`, lowerCase]) {
      for (const query of [`${secret}=1&kind=job&key=job-1`, `kind=job&key=job-1&${secret}=1`]) {
        const parsed = parseVertexQuery(new URLSearchParams(query));
        expect(parsed).toEqual({ ok: false, message: 'query: an unexpected parameter (allowed: kind, key)' });
      }
    }

    // Over HTTP: the whole answer (status line, headers, body) and the daemon's log.
    let log = '';
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        log += chunk.toString('utf8');
        done();
      },
    });
    const server = createHttpServer({
      service: new StoreBookingService(),
      metrics: new Metrics({ defaultMetrics: false }),
      logger: createLogger({ level: 'debug', pretty: false, destination }),
      version: '9.9.9-test',
    });
    await server.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = server.server.address() as net.AddressInfo;
      for (const secret of [`Bearer-${token}`, lowerCase]) {
        const answer = await rawGet(port, `/v1/vertex?kind=job&key=job-1&${secret}=1`);
        expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
        expect(answer).toContain(
          '{"error":"bad_request","message":"query: an unexpected parameter (allowed: kind, key)"}',
        );
        expect(answer).not.toContain(secret);
        expect(answer).not.toContain(token);
      }
      expect(log).toContain('request rejected'); // the 400s were logged…
      expect(log).not.toContain(token); // …without the names that came with them
      expect(log).not.toContain(lowerCase);
    } finally {
      await server.close(1_000);
    }
  });
});

/** One GET on a fresh connection; everything the server sent until it closed. */
function rawGet(port: number, path: string): Promise<string> {
  return rawExchange(port, `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
}
