/**
 * Reading the whole of a paged `GET /v1/state`: one page after another, following
 * `next_cursor` until it is null. Shared by the CLI's daemon client and the stress audit.
 */
import type { StateResponse } from './types.js';

/** Paging parameters of one page request; the first request carries none. */
export interface StatePaging {
  limit?: number;
  cursor?: string;
}

/**
 * Every vertex of a filtered state. `fetchPage` requests one page with the given paging
 * parameters (added to its own filter). The first request has none, so a daemon that does not
 * page answers it whole. The result is not one instant's snapshot: each row is as of its page.
 */
export async function collectStatePages(
  fetchPage: (paging: StatePaging) => Promise<StateResponse>,
  options: { limit: number; maxPages: number; tooMany: () => Error },
): Promise<StateResponse> {
  const vertices: StateResponse['vertices'] = [];
  // A page may repeat rows of the one before (the daemon forgot vertices in between): keep the first.
  const seen = new Set<string>();
  let page = await fetchPage({});
  for (let pages = 1; ; pages++) {
    for (const vertex of page.vertices) {
      const id = `${vertex.kind}\u0000${vertex.key}`;
      if (seen.has(id)) continue;
      seen.add(id);
      vertices.push(vertex);
    }
    const cursor = page.next_cursor;
    if (typeof cursor !== 'string' || cursor === '') break;
    if (pages >= options.maxPages) throw options.tooMany();
    page = await fetchPage({ limit: options.limit, cursor });
  }
  return { epoch: page.epoch, total: page.total, vertices, next_cursor: null };
}
