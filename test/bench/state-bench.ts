/**
 * `GET /v1/state` at farm scale (in process, 20 shows × 5 allocs, 2,000 folders, 20,000 jobs):
 * how long one read takes, and the longest stretch it keeps the event loop (and so every
 * booking) waiting: the longest gap between two ticks of a 1 ms timer (stall-probe.ts) while
 * reads run; the answer's JSON.stringify (synchronous in the server) is inside.
 */
import { performance } from 'node:perf_hooks';
import { Store } from '../../src/core/store.js';
import { VertexNames, stateResponse } from '../../src/service/state-view.js';
import { STATE_PAGE_MAX, type StateQuery } from '../../src/service/types.js';
import { decodeCursor } from '../../src/service/state-cursor.js';
import { StallProbe } from './stall-probe.js';
import { syntheticFarm } from './synthetic-farm.js';

export interface StateBenchResult {
  vertices: number;
  /** `?top=5000&sort=name`: whole read, and the longest event-loop stall during it (ms). */
  topReadMs: number;
  topStallMs: number;
  /** Every vertex in pages of 5,000, following next_cursor. */
  pagedReadMs: number;
  pagedStallMs: number;
  pages: number;
}

/** Run `body` while a probe measures the longest gap between two event-loop turns. */
async function withStallProbe(body: () => Promise<void>): Promise<{ ms: number; stallMs: number }> {
  const probe = new StallProbe();
  probe.start();
  const t0 = performance.now();
  await body();
  const ms = performance.now() - t0;
  return { ms, stallMs: probe.stop().maxMs };
}

export async function benchState(rounds = 5): Promise<StateBenchResult> {
  const { caps, shows } = syntheticFarm(0);
  const store = new Store();
  store.setCaps(caps);
  const managed = new Map(shows.map((id) => [id, `name of ${id}`]));
  const names = new VertexNames();
  for (const [id, name] of managed) names.rememberShow(id, name);
  const read = async (query: StateQuery) => JSON.stringify(await stateResponse(store, managed, names, query));
  await read({ top: STATE_PAGE_MAX, sort: 'name' }); // warm up
  let pages = 0;
  const top = { ms: Infinity, stallMs: Infinity };
  const paged = { ms: Infinity, stallMs: Infinity };
  for (let round = 0; round < rounds; round++) {
    const t = await withStallProbe(async () => void (await read({ top: STATE_PAGE_MAX, sort: 'name' })));
    top.ms = Math.min(top.ms, t.ms);
    top.stallMs = Math.min(top.stallMs, t.stallMs);
    const p = await withStallProbe(async () => {
      pages = 0;
      let cursor: string | null | undefined;
      do {
        const answer = await stateResponse(store, managed, names, {
          limit: STATE_PAGE_MAX,
          ...(cursor ? { cursor: decodeCursor(cursor)! } : {}),
        });
        JSON.stringify(answer);
        cursor = answer.next_cursor;
        pages++;
      } while (cursor);
    });
    paged.ms = Math.min(paged.ms, p.ms);
    paged.stallMs = Math.min(paged.stallMs, p.stallMs);
  }
  let vertices = 0;
  for (const kind of ['subscription', 'folder', 'job'] as const) vertices += store.count(kind);
  return {
    vertices,
    topReadMs: top.ms,
    topStallMs: top.stallMs,
    pagedReadMs: paged.ms,
    pagedStallMs: paged.stallMs,
    pages,
  };
}
