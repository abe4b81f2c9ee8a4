import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DaemonClient, parseDaemonAddress } from '../../src/cli/daemon-client.js';
import { CliError } from '../../src/cli/errors.js';
import { ExitCode } from '../../src/cli/exit-codes.js';

/** A port that was just free: bind it, note it, close it. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function failure(promise: Promise<unknown>): Promise<CliError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CliError);
  return err as CliError;
}

describe('parseDaemonAddress', () => {
  it('accepts http URLs, unix: paths and bare absolute paths', () => {
    expect(parseDaemonAddress('http://127.0.0.1:7878')).toMatchObject({
      kind: 'http',
      describe: 'http://127.0.0.1:7878',
    });
    expect(parseDaemonAddress('unix:/run/c.sock')).toEqual({
      kind: 'unix',
      socketPath: '/run/c.sock',
      describe: 'unix:/run/c.sock',
    });
    expect(parseDaemonAddress('unix:///run/c.sock')).toMatchObject({ socketPath: '/run/c.sock' });
    expect(parseDaemonAddress('/run/c.sock')).toMatchObject({ kind: 'unix', socketPath: '/run/c.sock' });
    expect(parseDaemonAddress('http://u:pw@h:1').describe).toBe('http://u:***@h:1');
  });

  it('rejects other schemes and relative socket paths with a usage error', () => {
    for (const bad of ['ftp://h', 'unix:relative.sock', 'not a url', '']) {
      expect(() => parseDaemonAddress(bad)).toThrow(CliError);
    }
  });
});

describe('DaemonClient transport failures → exit 3', () => {
  it('a closed port: ECONNREFUSED', async () => {
    const port = await closedPort();
    const err = await failure(new DaemonClient({ url: `http://127.0.0.1:${port}` }).status());
    expect(err.exitCode).toBe(ExitCode.UNREACHABLE);
    expect(err.message).toBe(`cannot reach daemon at http://127.0.0.1:${port}: ECONNREFUSED`);
  });

  it('a missing unix socket', async () => {
    const socket = path.join(os.tmpdir(), `cueacct-missing-${process.pid}.sock`);
    const err = await failure(new DaemonClient({ url: `unix:${socket}` }).status());
    expect(err.exitCode).toBe(ExitCode.UNREACHABLE);
    expect(err.message).toBe(`cannot reach daemon at unix:${socket}: ENOENT`);
  });

  it('a daemon that does not answer in time', async () => {
    const server = net.createServer(() => {
      /* accept, never answer */
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    try {
      const err = await failure(
        new DaemonClient({ url: `http://127.0.0.1:${port}`, timeoutMs: 200 }).status(),
      );
      expect(err.exitCode).toBe(ExitCode.UNREACHABLE);
      expect(err.message).toMatch(/timed out after 200 ms/);
    } finally {
      server.close();
    }
  });
});

describe('DaemonClient against a small HTTP server', () => {
  let server: http.Server;
  let url: string;
  const seen: { method?: string; url?: string; auth?: string; body?: string }[] = [];

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, body });
        const send = (status: number, payload: string) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(payload);
        };
        if (req.headers.authorization !== 'Bearer good') return send(401, '{"error":"unauthorized"}');
        if (req.url === '/v1/status') return send(200, '{"ready":true,"version":"x"}');
        if (req.url?.startsWith('/v1/state')) return send(200, JSON.stringify({ query: req.url }));
        if (req.url === '/v1/admin/reseed') return send(503, '{"error":"not_ready"}');
        if (req.url === '/v1/book') return send(409, '{"result":"limit_exceeded"}');
        if (req.url === '/html') return send(200, '<html>');
        return send(404, '{"error":"not_found"}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  });

  afterAll(() => {
    server.close();
  });

  it('GET /v1/status with the bearer token', async () => {
    const client = new DaemonClient({ url, token: 'good' });
    expect(await client.status()).toEqual({ ready: true, version: 'x' });
    expect(seen.at(-1)).toMatchObject({ method: 'GET', url: '/v1/status', auth: 'Bearer good' });
    expect(await client.state({ vertex: 'folder', show: 'a b', top: 5 })).toEqual({
      query: '/v1/state?vertex=folder&show=a+b&top=5',
    });
    client.close();
  });

  it('401 → usage error (exit 2) that never shows the token', async () => {
    let err = await failure(new DaemonClient({ url, token: 'wrong-token' }).status());
    expect(err.exitCode).toBe(ExitCode.USAGE);
    expect(err.message).toBe(`daemon at ${url} rejected the token (HTTP 401)`);
    err = await failure(new DaemonClient({ url }).status());
    expect(err.exitCode).toBe(ExitCode.USAGE);
    expect(err.message).toMatch(/requires a token .*--token or set CUEACCT_TOKEN/);
  });

  it('other statuses: request() returns them, getJson/postJson/admin fail with exit 1', async () => {
    const client = new DaemonClient({ url, token: 'good' });
    expect(await client.request('POST', '/v1/book', { body: { show: 's' } })).toEqual({
      status: 409,
      body: { result: 'limit_exceeded' },
    });
    expect(seen.at(-1)).toMatchObject({ method: 'POST', body: '{"show":"s"}' });
    const err = await failure(client.admin('reseed'));
    expect(err.exitCode).toBe(ExitCode.PROBLEM);
    expect(err.message).toBe(`daemon at ${url} answered POST /v1/admin/reseed with HTTP 503: not_ready`);
    const html = await failure(client.getJson('/html'));
    expect(html.exitCode).toBe(ExitCode.PROBLEM);
    expect(html.message).toMatch(/non-JSON body/);
  });
});
