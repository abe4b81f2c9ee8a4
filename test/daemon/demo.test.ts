/**
 * The README's main job: `serve --embedded --simulate` needs no database, seeds a demo farm,
 * runs a bounded demo load through its own API, and stops its private PostgreSQL last.
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/db.js';
import { api, startDaemon, waitReady, type Daemon } from '../support/daemon.js';

// Not created here: cueacct makes it so the non-root PostgreSQL user can enter it.
const dataDir = path.join(tmpdir(), `cueacct-demo-${randomUUID()}`);
let daemon: Daemon | undefined;

afterAll(async () => {
  await daemon?.stop('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

describe('cueacct serve --embedded --simulate', () => {
  it('serves the demo farm, books through its own API for the given time, and shuts down cleanly', async () => {
    daemon = await startDaemon({
      args: [
        '--embedded',
        '--data-dir',
        dataDir,
        '--simulate',
        '--simulate-for',
        '2',
        '--listen',
        '127.0.0.1:0',
      ],
      timeoutMs: 60_000,
    });
    await waitReady(daemon);
    const status = (await api(daemon, 'GET', '/v1/status')).body;
    expect(status.managed_shows.length).toBeGreaterThanOrEqual(2);
    await waitFor(() => daemon!.output().includes('"msg":"simulation finished"'), {
      timeoutMs: 20_000,
      message: 'the bounded simulation to end by itself',
    });
    const after = (await api(daemon, 'GET', '/v1/status')).body;
    expect(after.bookings.applied).toBeGreaterThan(0);
    expect(await daemon.stop('SIGTERM')).toBe(0);
    expect(daemon.output()).toContain('embedded PostgreSQL stopped');
  });
});
