/**
 * A loopback TCP proxy in front of PostgreSQL that plays the network's failures: it can
 * stall connections (stop forwarding both ways while both sockets stay open, like a
 * partition whose packets vanish) or cut them, chosen by the `application_name` of their
 * startup packet, or all of them. Daemons connect through it with `--database-url` pointing
 * at its port.
 *
 * A stalled connection's close is not passed on either (the partition swallows the FIN):
 * the server keeps that session, and its advisory lock, until the test terminates the
 * backend (playing the server's keepalive) or heals the stall.
 */
import net from 'node:net';

const PROTOCOL_3 = 196608;
const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;

export interface ProxiedConnection {
  applicationName: string;
  stalled: boolean;
}

interface Link extends ProxiedConnection {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** Bytes for the server held back while stalled before the upstream was written to. */
  held: Buffer[];
  closePending: boolean;
}

export interface TcpProxy {
  port: number;
  /** `databaseUrl` with its host and port replaced by the proxy's. */
  urlFor(databaseUrl: string): string;
  connections(applicationName?: string): ProxiedConnection[];
  /** Stall the matching connections (all when no name), and new ones with that name until healed. */
  stall(applicationName?: string): number;
  heal(applicationName?: string): void;
  /** Close the matching connections (all when no name) at once, both ways. */
  cut(applicationName?: string): number;
  close(): Promise<void>;
}

/** Parse the startup packet: `undefined` until complete; SSL/GSS requests are answered 'N'. */
function readStartup(
  buffer: Buffer,
  answer: (byte: string) => void,
): { rest: Buffer; applicationName: string } | undefined {
  let data = buffer;
  for (;;) {
    if (data.length < 8) return undefined;
    const length = data.readInt32BE(0);
    const code = data.readInt32BE(4);
    if (length === 8 && (code === SSL_REQUEST || code === GSS_REQUEST)) {
      answer('N');
      data = data.subarray(8);
      continue;
    }
    if (data.length < length) return undefined;
    let applicationName = '';
    if (code === PROTOCOL_3) {
      const fields = data
        .subarray(8, length - 1)
        .toString('utf8')
        .split('\0');
      for (let i = 0; i + 1 < fields.length; i += 2)
        if (fields[i] === 'application_name') applicationName = fields[i + 1]!;
    }
    return { rest: data, applicationName };
  }
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const links = new Set<Link>();
  const stalledNames = new Set<string>();
  let stallAll = false;
  const matches = (link: Link, name?: string) => name === undefined || link.applicationName === name;

  const destroy = (link: Link) => {
    link.client.destroy();
    link.upstream?.destroy();
    links.delete(link);
  };
  const stallLink = (link: Link) => {
    link.stalled = true;
    link.client.pause();
    link.upstream?.pause();
  };
  const healLink = (link: Link) => {
    link.stalled = false;
    if (link.closePending) return destroy(link);
    for (const chunk of link.held.splice(0)) link.upstream?.write(chunk);
    link.client.resume();
    link.upstream?.resume();
  };

  const server = net.createServer((client) => {
    let buffer = Buffer.alloc(0);
    const onStartup = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const startup = readStartup(buffer, (byte) => client.write(byte));
      if (startup === undefined) {
        // Drop answered SSL requests from the buffer so they are not parsed twice.
        while (buffer.length >= 8 && buffer.readInt32BE(0) === 8) buffer = buffer.subarray(8);
        return;
      }
      client.off('data', onStartup);
      const link: Link = {
        applicationName: startup.applicationName,
        stalled: false,
        client,
        upstream: undefined,
        held: [],
        closePending: false,
      };
      links.add(link);
      const upstream = net.connect(target.port, target.host);
      link.upstream = upstream;
      upstream.setNoDelay(true);
      client.setNoDelay(true);
      client.on('data', (data: Buffer) => (link.stalled ? link.held.push(data) : upstream.write(data)));
      upstream.on('data', (data: Buffer) => client.write(data));
      for (const socket of [client, upstream]) {
        socket.on('error', () => undefined);
        socket.on('close', () => {
          if (link.stalled) link.closePending = true;
          else destroy(link);
        });
      }
      link.held.push(startup.rest);
      if (stallAll || stalledNames.has(link.applicationName)) stallLink(link);
      else healLink(link);
    };
    client.on('data', onStartup);
    client.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    urlFor(databaseUrl) {
      const url = new URL(databaseUrl);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return url.toString();
    },
    connections: (name) =>
      [...links]
        .filter((link) => matches(link, name))
        .map(({ applicationName, stalled }) => ({ applicationName, stalled })),
    stall(name) {
      if (name === undefined) stallAll = true;
      else stalledNames.add(name);
      let n = 0;
      for (const link of links) {
        if (!matches(link, name)) continue;
        stallLink(link);
        n++;
      }
      return n;
    },
    heal(name) {
      if (name === undefined) {
        stallAll = false;
        stalledNames.clear();
      } else stalledNames.delete(name);
      for (const link of [...links]) if (link.stalled && matches(link, name)) healLink(link);
    },
    cut(name) {
      let n = 0;
      for (const link of [...links]) {
        if (!matches(link, name)) continue;
        destroy(link);
        n++;
      }
      return n;
    },
    close: async () => {
      for (const link of [...links]) destroy(link);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
