import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { startCluster as startEmbeddedCluster } from '../../src/embedded/cluster.js';

describe('embedded cluster (the fallback when no server answers)', () => {
  it('starts on a free port, answers queries, and leaves nothing behind when stopped', async () => {
    const cluster = await startEmbeddedCluster();
    try {
      expect(cluster.port).not.toBe(5432);
      const sql = postgres(cluster.url, { max: 1 });
      try {
        const [row] = await sql<{ one: number; listen: string }[]>`
          select 1 as one, current_setting('listen_addresses') as listen`;
        expect(row).toEqual({ one: 1, listen: '127.0.0.1' });
      } finally {
        await sql.end();
      }
      // PostgreSQL refuses root; as root the harness must have dropped to another user.
      const owner = execFileSync('ps', ['-o', 'uid=', '-p', String(cluster.pid)], { encoding: 'utf8' });
      expect(Number(owner.trim())).not.toBe(0);
    } finally {
      await cluster.stop();
    }
    expect(existsSync(cluster.baseDir)).toBe(false);
    expect(() => process.kill(cluster.pid, 0)).toThrow();
  });
});
