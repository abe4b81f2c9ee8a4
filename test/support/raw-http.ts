import net from 'node:net';

/**
 * Write raw bytes to 127.0.0.1:`port` on a fresh connection; resolve with everything received
 * until the server closes it (status line, headers and body, as sent).
 */
export function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => resolve(received));
    socket.on('error', reject);
    socket.write(text);
  });
}
