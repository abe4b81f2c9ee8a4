/**
 * The bootstrap seed, shared by the daemon's start-up and `cueacct seed`: caps first, then
 * booked counters, for the given shows, into a store.
 */
import type { Sql } from 'postgres';
import { buildCapSet, buildSnapshot } from '../core/boundary.js';
import type { Store } from '../core/store.js';
import { bookedRows, capRows, type NamedCapRows, type ShowRow } from '../db/queries.js';

export interface SeedResult {
  caps: NamedCapRows;
  procGroups: number;
}

export async function seedStore(
  pool: Sql,
  store: Store,
  shows: readonly ShowRow[],
  multiplier: number,
): Promise<SeedResult> {
  const ids = shows.map((show) => show.id);
  const caps = await capRows(pool, ids);
  store.setCaps(buildCapSet(caps, multiplier), { authoritativeShows: new Set(ids) });
  // Bumped before the read, as for a recompute: a confirm racing the read is carried.
  const epoch = store.beginRecompute();
  const booked = await bookedRows(pool, ids);
  store.seedShowBooked(buildSnapshot(booked, caps, multiplier), epoch);
  return { caps, procGroups: booked.length };
}
