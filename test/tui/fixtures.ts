/** Builders for `GET /v1/status` and `GET /v1/state` answers used by the TUI tests. */
import type { StateResponse, StatusResponse, VertexState } from '../../src/api/types.js';
import type { VertexKind } from '../../src/core/types.js';

export const NOW = Date.parse('2025-03-01T12:00:00.000Z');

export function makeStatus(overrides: Partial<StatusResponse> = {}): StatusResponse {
  return {
    version: '0.1.0',
    uptime_s: 3600,
    ready: true,
    lock_held: true,
    listener: {
      connected: true,
      reconnects: 0,
      applied: { release: 10, limit_change: 1, managed_change: 0, probe: 0 },
      dropped: 0,
      last_notification_at: new Date(NOW - 2_000).toISOString(),
    },
    last_recompute: {
      at: new Date(NOW - 4_000).toISOString(),
      duration_ms: 120,
      ok: true,
      error: null,
      drift: {
        subscription: { cores: 0, gpus: 0, keys: 0 },
        folder: { cores: 0, gpus: 0, keys: 0 },
        job: { cores: 0, gpus: 0, keys: 0 },
      },
    },
    last_reseed: { at: new Date(NOW - 60_000).toISOString(), duration_ms: 30, ok: true, error: null },
    last_shows_refresh: { at: new Date(NOW - 10_000).toISOString(), duration_ms: 5, ok: true, error: null },
    epoch: 42,
    inflight: 3,
    managed_shows: [
      { id: 'show-a', name: 'alpha' },
      { id: 'show-b', name: 'bravo' },
    ],
    deferred_shows: [],
    bookings: { applied: 1000, rejected: 10, not_managed: 0, lease_expired: 0 },
    counts: { subscription: 3, folder: 3, job: 3 },
    ...overrides,
  };
}

export function makeVertex(kind: VertexKind, key: string, fields: Partial<VertexState> = {}): VertexState {
  const isSub = kind === 'subscription';
  return {
    kind,
    key,
    show: isSub ? (key.split('/')[0] ?? null) : 'show-a',
    alloc: isSub ? (key.split('/')[1] ?? null) : null,
    name: null,
    show_name: null,
    cores: 0,
    gpus: 0,
    inflight_cores: 0,
    inflight_gpus: 0,
    settled_cores: 0,
    settled_gpus: 0,
    max_cores: isSub ? 100 : -1,
    max_gpus: isSub ? 0 : -1,
    utilization: null,
    ...fields,
  };
}

export function makeState(vertices: VertexState[], total = vertices.length): StateResponse {
  return { epoch: 42, vertices, total };
}

/** A farm with rows of every severity in each kind. */
export function sampleState(): StateResponse {
  return makeState([
    makeVertex('subscription', 'show-a/lax', {
      name: 'alpha.lax',
      show_name: 'alpha',
      cores: 50,
      max_cores: 100,
    }),
    makeVertex('subscription', 'show-b/lax', {
      name: 'bravo.lax',
      show_name: 'bravo',
      cores: 95,
      max_cores: 100,
    }),
    makeVertex('subscription', 'show-c/lax', { name: null, show_name: null, cores: 0, max_cores: 0 }),
    makeVertex('folder', 'folder-1', { name: 'lighting', show_name: 'alpha', cores: 120, max_cores: 100 }),
    makeVertex('folder', 'folder-2', { name: 'anim', show_name: 'alpha', cores: 10, max_cores: -1 }),
    makeVertex('folder', 'folder-3', {
      name: 'fx',
      show: 'show-b',
      show_name: 'bravo',
      cores: 20,
      max_cores: 100,
      gpus: 4,
      max_gpus: 4,
    }),
    makeVertex('job', 'job-1', { name: 'alpha-shot010-comp', show_name: 'alpha', cores: 8, max_cores: 10 }),
    makeVertex('job', 'job-2', {
      name: 'bravo-shot020-fx',
      show: 'show-b',
      show_name: 'bravo',
      cores: 2,
      max_cores: 10,
      inflight_cores: 2,
      inflight_gpus: 1,
      gpus: 1,
    }),
    makeVertex('job', 'job-3', { name: 'alpha-shot030-lgt', show_name: 'alpha', cores: 30, max_cores: 0 }),
  ]);
}
