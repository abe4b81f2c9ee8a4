/**
 * The machine's floor under any single-booking latency: one 200-byte message echoed between two
 * Node processes over loopback TCP, one in flight at a time, no HTTP, no JSON, no accounting.
 * Run as `node loopback-floor.js echo` it is the echo process.
 */
import { fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

export interface LoopbackFloor {
  roundTrips: number;
  p50Ms: number;
  p99Ms: number;
}

const SELF = fileURLToPath(import.meta.url);
const WARM_UP_MS = 500;

function echo(): void {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on('data', (chunk) => socket.write(chunk));
  });
  server.listen(0, '127.0.0.1', () => process.send!((server.address() as net.AddressInfo).port));
  process.once('message', () => process.exit(0));
}

export async function benchLoopbackFloor(seconds = 2): Promise<LoopbackFloor> {
  const child = fork(SELF, ['echo'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve(m as number)));
    const socket = net.connect(port, '127.0.0.1');
    socket.setNoDelay(true);
    await new Promise((resolve) => socket.once('connect', resolve));
    const payload = Buffer.alloc(200, 'x');
    const latencies: number[] = [];
    const started = performance.now();
    const end = started + WARM_UP_MS + seconds * 1000;
    for (;;) {
      const t0 = performance.now();
      if (t0 >= end) break;
      // The echo of 200 bytes arrives as one chunk on loopback.
      const answered = new Promise((resolve) => socket.once('data', resolve));
      socket.write(payload);
      await answered;
      if (t0 >= started + WARM_UP_MS) latencies.push(performance.now() - t0);
    }
    socket.destroy();
    const sorted = Float64Array.from(latencies).sort();
    const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
    return { roundTrips: sorted.length, p50Ms: at(0.5), p99Ms: at(0.99) };
  } finally {
    child.send('exit');
  }
}

if (process.argv[2] === 'echo') echo();
