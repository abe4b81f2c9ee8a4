import { describe, expect, it } from 'vitest';
import type { StateResponse } from '../../src/api/types.js';
import { Store } from '../../src/core/store.js';
import { decodeCursor, encodeCursor } from '../../src/service/state-cursor.js';
import { VertexNames, stateResponse } from '../../src/service/state-view.js';
import type { StateQuery } from '../../src/service/types.js';

function farm(jobs: number): { store: Store; managed: Map<string, string>; names: VertexNames } {
  const store = new Store();
  store.setCaps({
    subscriptions: [{ show: 's1', alloc: 'a1', burst: 1_000_000 }],
    folders: [{ id: 'f1', show: 's1', maxCores: -1, maxGpus: -1 }],
    jobs: Array.from({ length: jobs }, (_, i) => ({
      id: `j${i}`,
      show: i % 10 === 9 ? 's2' : 's1',
      maxCores: 100,
      maxGpus: -1,
    })),
  });
  return { store, managed: new Map([['s1', 'show one']]), names: new VertexNames() };
}

/** Follow next_cursor from the first page; returns the pages. */
async function pages(f: ReturnType<typeof farm>, query: StateQuery, between?: (page: number) => void) {
  const out: StateResponse[] = [];
  let cursor: string | null | undefined;
  do {
    const page = await stateResponse(f.store, f.managed, f.names, {
      ...query,
      ...(cursor ? { cursor: decodeCursor(cursor)! } : {}),
    });
    out.push(page);
    cursor = page.next_cursor;
    between?.(out.length);
  } while (cursor);
  return out;
}

describe('GET /v1/state paging', () => {
  it('lists every vertex of a managed show exactly once, in pages of at most `limit`, across yields', async () => {
    const f = farm(10_000); // 9,000 jobs of s1 (managed), 1,000 of s2 (not): several scan slices
    const all = await pages(f, { limit: 700 });
    const keys = all.flatMap((p) => p.vertices.map((v) => `${v.kind}:${v.key}`));
    expect(keys).toHaveLength(2 + 9_000);
    expect(new Set(keys).size).toBe(keys.length);
    for (const page of all) expect(page.total).toBe(9_002);
    expect(all.map((p) => p.vertices.length)).toEqual([...Array(12).fill(700), 9_002 - 12 * 700]);
    expect(all.at(-1)!.next_cursor).toBeNull();
    expect(keys.filter((k) => ['job:j9', 'job:j19', 'job:j9999'].includes(k))).toEqual([]); // s2 is not managed
  });

  it('keeps its place when vertices appear between pages: none skipped, none twice', async () => {
    const f = farm(3_000);
    const all = await pages(f, { vertex: 'job', limit: 1_000 }, (page) => {
      // A booking on a job the store has never seen creates a vertex at the end of its kind.
      f.store.book({ show: 's1', alloc: 'a1', folder: 'f1', job: `new-${page}`, cores: 1, gpus: 0 });
    });
    const keys = all.flatMap((p) => p.vertices.map((v) => v.key));
    expect(new Set(keys).size).toBe(keys.length);
    for (let i = 0; i < 3_000; i++) if (i % 10 !== 9) expect(keys).toContain(`j${i}`);
    expect(keys).toContain('new-1');
  });

  it('a recompute that forgets vertices between pages moves the next page back: repeats, never a skip', async () => {
    const f = farm(3_000);
    const all = await pages(f, { vertex: 'job', limit: 500 }, (page) => {
      if (page !== 1) return;
      // Jobs j0..j299 (already listed) leave the cap set with no procs: the overwrite forgets them.
      const epoch = f.store.beginRecompute();
      const kept = Array.from({ length: 2_700 }, (_, i) => ({
        id: `j${i + 300}`,
        show: 's1',
        cores: 0,
        gpus: 0,
      }));
      f.store.overwriteCounters({ subscriptions: [], folders: [], jobs: kept }, epoch);
      expect(f.store.removals).toBeGreaterThanOrEqual(300);
    });
    const keys = new Set(all.flatMap((p) => p.vertices.map((v) => v.key)));
    for (let i = 300; i < 3_000; i++) if (i % 10 !== 9) expect(keys.has(`j${i}`), `j${i}`).toBe(true);
  });

  it('top: the first N of the whole filtered state after sorting, one answer', async () => {
    const f = farm(5_000);
    for (const [i, cores] of [
      [17, 90],
      [4_321, 80],
      [2, 70],
    ] as const) {
      f.store.book({ show: 's1', alloc: 'a1', folder: 'f1', job: `j${i}`, cores, gpus: 0 });
    }
    const top = await stateResponse(f.store, f.managed, f.names, {
      vertex: 'job',
      top: 3,
      sort: 'utilization',
    });
    expect(top.vertices.map((v) => v.key)).toEqual(['j17', 'j4321', 'j2']);
    expect(top.total).toBe(4_500);
    expect(top.next_cursor).toBeNull();
    const byName = await stateResponse(f.store, f.managed, f.names, { vertex: 'job', top: 3, sort: 'name' });
    expect(byName.vertices.map((v) => v.key)).toEqual(['j0', 'j1', 'j10']);
  });

  it('cursors are opaque tokens the daemon made; anything else is refused', () => {
    const cursor = { kind: 2, position: 12_345, removals: 67 };
    expect(decodeCursor(encodeCursor(cursor))).toEqual(cursor);
    for (const junk of [
      '',
      'x',
      'djEuMy4w',
      Buffer.from('v1.0.01').toString('base64url'),
      Buffer.from('v1.0.-1').toString('base64url'),
      'a'.repeat(100),
    ]) {
      expect(decodeCursor(junk), junk).toBeUndefined();
    }
  });
});
