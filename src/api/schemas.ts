/**
 * The daemon's answers as zod schemas, for the OpenAPI document (src/http/openapi.ts) and the
 * contract test. The TypeScript shapes in ./types.ts stay the ones the code uses; the
 * assertions at the bottom make the compiler refuse any difference between the two, so a
 * field added to one and not the other fails `npm run typecheck`.
 */
import { z } from 'zod';
import type {
  BookResponse,
  ConfirmResponse,
  BookRefusal,
  DrainShowResponse,
  ErrorResponse,
  RollbackResponse,
  StateResponse,
  StatusResponse,
  UndrainShowResponse,
  VertexDetailResponse,
  VertexState,
} from './types.js';

const vertexKind = z.enum(['subscription', 'folder', 'job']);
const limitTable = z.enum(['subscription', 'folder', 'job', 'folder_gpus', 'job_gpus']);
const isoTime = z.iso.datetime();
const count = z.int().min(0);

export const bookResponseSchema = z.discriminatedUnion('result', [
  z.object({
    result: z.literal('applied'),
    booking: z.string(),
    lease_expires_at: isoTime,
    insert_deadline: isoTime,
  }),
  z.object({ result: z.literal('not_managed') }),
  z.object({ result: z.literal('show_draining'), show: z.string(), reason: z.string() }),
  z.object({ result: z.literal('limit_exceeded'), table: limitTable, current: z.int(), limit: z.int() }),
]);

/** Refused before any cap check (nothing changed): unknown key, wrong path, or still resolving. */
export const bookRefusalSchema = z.discriminatedUnion('error', [
  z.object({ error: z.literal('unknown_job'), job: z.string() }),
  z.object({ error: z.literal('unknown_folder'), folder: z.string() }),
  z.object({ error: z.literal('unknown_subscription'), show: z.string(), alloc: z.string() }),
  z.object({ error: z.literal('wrong_folder'), job: z.string(), folder: z.string() }),
  z.object({ error: z.literal('wrong_show'), job: z.string(), show: z.string() }),
  z.object({ error: z.literal('resolving'), retry_after_ms: count }),
]);

export const drainShowResponseSchema = z.object({
  result: z.literal('drained'),
  show: z.string(),
  waited_ms: z.number(),
});
/** 409 of a drain that ran out of time (the server adds a one-line `message`). */
export const drainTimeoutSchema = z.object({
  error: z.literal('drain_timeout'),
  show: z.string(),
  inflight: count,
  message: z.string(),
});
export const undrainShowResponseSchema = z.object({
  result: z.enum(['lifted', 'not_draining']),
  show: z.string(),
});

const settleError = z.object({ error: z.enum(['unknown_booking', 'lease_expired']) });
export const confirmResponseSchema = z.union([z.object({ result: z.literal('confirmed') }), settleError]);
export const rollbackResponseSchema = z.union([z.object({ result: z.literal('rolled_back') }), settleError]);

export const errorResponseSchema = z.object({ error: z.string(), message: z.string().optional() });

/** One batch entry: the single endpoint's body plus the status it would have had. */
export const batchEntrySchema = z.union([
  z.object({
    status: z.literal(200),
    result: z.literal('applied'),
    booking: z.string(),
    lease_expires_at: isoTime,
    insert_deadline: isoTime,
  }),
  z.object({ status: z.literal(200), result: z.enum(['not_managed', 'confirmed', 'rolled_back']) }),
  z.object({
    status: z.literal(409),
    result: z.literal('show_draining'),
    show: z.string(),
    reason: z.string(),
  }),
  z.object({
    status: z.literal(409),
    result: z.literal('limit_exceeded'),
    table: limitTable,
    current: z.int(),
    limit: z.int(),
  }),
  z.object({ status: z.int().min(400).max(599), error: z.string(), message: z.string().optional() }),
]);
export const batchResponseSchema = z.object({ results: z.array(batchEntrySchema) });

export const vertexStateSchema = z.object({
  kind: vertexKind,
  key: z.string(),
  show: z.string().nullable(),
  alloc: z.string().nullable(),
  name: z.string().nullable(),
  show_name: z.string().nullable(),
  cores: z.int(),
  gpus: z.int(),
  inflight_cores: z.int(),
  inflight_gpus: z.int(),
  settled_cores: z.int(),
  settled_gpus: z.int(),
  max_cores: z.int(),
  max_gpus: z.int(),
  utilization: z.number().nullable(),
  refusals: z
    .object({
      total: count,
      by_table: z.partialRecord(limitTable, count),
      per_s_1m: z.number(),
      per_s_5m: z.number(),
      last_at: isoTime.nullable(),
    })
    .optional(),
});

export const stateResponseSchema = z.object({
  epoch: z.int(),
  vertices: z.array(vertexStateSchema),
  total: count,
  next_cursor: z.string().nullable().optional(),
});

export const vertexDetailResponseSchema = z.object({
  vertex: vertexStateSchema,
  path: z.array(vertexStateSchema),
  binding: z
    .object({ key: z.string(), table: limitTable, reason: z.enum(['refusing', 'fullest']) })
    .nullable(),
  history: z.array(z.object({ at: isoTime, utilization: z.number().nullable(), refusals_per_s: z.number() })),
  sample_ms: z.number(),
});

const passStatus = z.object({
  at: isoTime.nullable(),
  duration_ms: z.number().nullable(),
  ok: z.boolean().nullable(),
  error: z.string().nullable(),
});
const drift = z.object({ cores: count, gpus: count, keys: count });

export const statusResponseSchema = z.object({
  version: z.string(),
  uptime_s: z.number(),
  ready: z.boolean(),
  lock_held: z.boolean(),
  lock: z
    .object({
      state: z.enum(['standby', 'acquiring', 'syncing', 'serving', 'fenced', 'stopped']),
      lease_age_ms: z.number().nullable(),
      ttl_ms: z.number(),
      handovers: count,
      backend_pid: z.int().nullable(),
    })
    .optional(),
  listener: z.object({
    connected: z.boolean(),
    reconnects: count,
    applied: z.object({ release: count, limit_change: count, managed_change: count, probe: count }),
    dropped: count,
    last_notification_at: isoTime.nullable(),
  }),
  last_recompute: passStatus.extend({
    drift: z.object({ subscription: drift, folder: drift, job: drift }).nullable(),
  }),
  last_reseed: passStatus,
  last_shows_refresh: passStatus,
  epoch: z.int(),
  inflight: count,
  managed_shows: z.array(z.object({ id: z.string(), name: z.string().nullable() })),
  deferred_shows: z.array(z.object({ id: z.string(), error: z.string() })),
  draining_shows: z.array(z.object({ id: z.string(), reason: z.string() })).optional(),
  bookings: z.object({ applied: count, rejected: count, not_managed: count, lease_expired: count }),
  counts: z.object({ subscription: count, folder: count, job: count }),
});

export const adminDoneSchema = z.object({ result: z.literal('done'), duration_ms: z.number() });
export const healthSchema = z.object({ status: z.enum(['ok', 'ready']) });

// ---- the zod shapes and ./types.ts must be the same, both ways ------------------------------
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
function same<T extends true>(): T | undefined {
  return undefined;
}
same<Same<z.infer<typeof bookResponseSchema>, BookResponse>>();
same<Same<z.infer<typeof confirmResponseSchema>, ConfirmResponse>>();
same<Same<z.infer<typeof rollbackResponseSchema>, RollbackResponse>>();
same<Same<z.infer<typeof vertexStateSchema>, VertexState>>();
same<Same<z.infer<typeof stateResponseSchema>, StateResponse>>();
same<Same<z.infer<typeof statusResponseSchema>, StatusResponse>>();
same<Same<z.infer<typeof errorResponseSchema>, ErrorResponse>>();
same<Same<z.infer<typeof bookRefusalSchema>, BookRefusal>>();
same<Same<z.infer<typeof drainShowResponseSchema>, DrainShowResponse>>();
same<Same<z.infer<typeof undrainShowResponseSchema>, UndrainShowResponse>>();
same<Same<z.infer<typeof vertexDetailResponseSchema>, VertexDetailResponse>>();
