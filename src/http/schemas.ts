/**
 * Request validation for the HTTP API (SPEC §3). Every failure becomes one line naming the
 * field, what was expected and what kind of value came, e.g. `cores: expected a whole number
 * from 0 to 1000000, got a fractional number`, `booking: missing`, `ops[3].op: expected one
 * of book, confirm, rollback, got a string of 5 characters`.
 *
 * A message never repeats a received value: a client that pastes its token (or any secret)
 * into a field must not find it in the answer or in the log. Only its kind is described
 * (a string of N characters, a negative number, an object), and an unknown field or query
 * parameter is named only when its name looks like a field name (lower-case letters and `_`).
 *
 * Schemas are strict: an unknown field is an error (`ops[0].gpu: unexpected field`), so a
 * typo never books with a silently defaulted value.
 */
import { z } from 'zod';
import { MAX_BOOKING_CORES, MAX_BOOKING_GPUS } from '../core/booking-range.js';
import type { BookingRequest, VertexKind } from '../core/types.js';
import { VERTEX_KINDS } from '../core/types.js';
import { decodeCursor } from '../service/state-cursor.js';
import { STATE_PAGE_MAX, type StateQuery } from '../service/types.js';

/** Longest accepted id (show, alloc, folder, job, booking). Cuebot ids are 36-character UUIDs. */
export const MAX_ID_LENGTH = 256;
/** Most ops one `POST /v1/batch` may carry. */
export const MAX_BATCH_OPS = 10_000;

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; message: string };

export type BatchOp =
  | ({ op: 'book' } & BookingRequest)
  | { op: 'confirm'; booking: string }
  | { op: 'rollback'; booking: string };

/** The kind of a received value for an error message, never the value itself. */
export function describeValue(v: unknown, max?: number): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'number':
      if (!Number.isInteger(v)) return 'a fractional number';
      if (!Number.isSafeInteger(v)) return 'a number outside the safe integer range';
      if (v < 0) return 'a negative number';
      return max !== undefined && v > max ? `a number above ${max}` : 'a number';
    case 'string':
      return v === '' ? 'an empty string' : `a string of ${v.length} characters`;
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'an object';
    default:
      return typeof v;
  }
}

/** `, got <kind of value>` for an error message; empty when there is no value. */
function got(input: unknown, max?: number): string {
  return input === undefined ? '' : `, got ${describeValue(input, max)}`;
}

/** A received field or parameter name, repeated only when it looks like one (not like a secret). */
function nameOf(key: string): string | undefined {
  return /^[a-z_]{1,32}$/.test(key) ? key : undefined;
}

/** Whole, safe integer from 0 to `max` (cores, gpus). */
function count(max: number) {
  const expected = `expected a whole number from 0 to ${max}`;
  const error = (iss: { input?: unknown }) =>
    iss.input === undefined ? 'missing' : `${expected}${got(iss.input, max)}`;
  return z.int({ error }).min(0, { error }).max(max, { error });
}

/** An opaque, non-empty id of bounded length. */
function id() {
  const expected = `expected a non-empty string of at most ${MAX_ID_LENGTH} characters`;
  const error = (iss: { input?: unknown }) =>
    iss.input === undefined ? 'missing' : `${expected}${got(iss.input)}`;
  return z.string({ error }).min(1, { error }).max(MAX_ID_LENGTH, { error });
}

const bookFields = {
  show: id(),
  alloc: id(),
  folder: id(),
  job: id(),
  cores: count(MAX_BOOKING_CORES),
  gpus: count(MAX_BOOKING_GPUS),
};
const bookSchema = z.strictObject(bookFields);
const settleSchema = z.strictObject({ booking: id() });
const bookOpSchema = z.strictObject({ op: z.literal('book'), ...bookFields });
const confirmOpSchema = z.strictObject({ op: z.literal('confirm'), booking: id() });
const rollbackOpSchema = z.strictObject({ op: z.literal('rollback'), booking: id() });
const OP_NAMES = ['book', 'confirm', 'rollback'] as const;

/**
 * The request schemas above, for the OpenAPI document (src/http/openapi.ts): the contract
 * is generated from exactly what the server validates with.
 */
export const REQUEST_SCHEMAS = {
  /** The admin passes take no body, or `{}` (checked by hand in the server, same rule). */
  AdminRequest: z.strictObject({}),
  BookRequest: bookSchema,
  SettleRequest: settleSchema,
  BatchRequest: z.strictObject({
    ops: z
      .array(z.discriminatedUnion('op', [bookOpSchema, confirmOpSchema, rollbackOpSchema]))
      .max(MAX_BATCH_OPS),
  }),
};

/** `ops[3].cores` from the prefix `ops[3]` and the path `['cores']`. */
function formatPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

/** One line for the first issue: `<field>: <problem>`. */
function formatIssue(issue: z.core.$ZodIssue, prefix: string, root: unknown): string {
  const where = formatPath(prefix, issue.path);
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys;
    const name = keys.length === 1 ? nameOf(keys[0]!) : undefined;
    if (name !== undefined) return `${formatPath(where, [name])}: unexpected field`;
    const named = keys.map(nameOf).filter((k) => k !== undefined);
    return `${where === '' ? 'body' : where}: ${keys.length === 1 ? 'an unexpected field' : `${keys.length} unexpected fields`}${named.length > 0 ? ` (${named.join(', ')}, …)` : ''}`;
  }
  if (issue.path.length === 0) {
    // The value itself has the wrong type (an array, a string, null where an object belongs).
    return `${where === '' ? 'body' : where}: expected a JSON object${got(root)}`;
  }
  return `${where}: ${issue.message}`;
}

function check<T>(schema: z.ZodType<T>, value: unknown, prefix = ''): ValidationResult<T> {
  // No `reportInput` here: it takes zod off its fast path (~6x slower). The error maps see
  // the input anyway, and the root value is at hand.
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, message: formatIssue(parsed.error.issues[0]!, prefix, value) };
}

/** A booking of 0 cores and 0 GPUs would pass every cap check and still create vertices. */
function emptyBooking(request: BookingRequest, prefix: string): string | undefined {
  if (request.cores !== 0 || request.gpus !== 0) return undefined;
  const field = (name: string) => (prefix === '' ? name : `${prefix}.${name}`);
  return `${field('cores')}, ${field('gpus')}: expected at least one of them above 0, got 0 and 0`;
}

export function parseBook(body: unknown): ValidationResult<BookingRequest> {
  const parsed = check(bookSchema, body);
  if (!parsed.ok) return parsed;
  const empty = emptyBooking(parsed.value, '');
  return empty === undefined ? parsed : { ok: false, message: empty };
}

/** Longest a `POST /v1/admin/drain-show` may wait (10 minutes: a lease is 2 by default). */
export const MAX_DRAIN_TIMEOUT_MS = 600_000;

const drainShowSchema = z.strictObject({
  show: id(),
  timeout_ms: z
    .int({ error: (iss) => (iss.input === undefined ? 'missing' : `expected an integer${got(iss.input)}`) })
    .min(0, { error: (iss) => `expected an integer from 0 to ${MAX_DRAIN_TIMEOUT_MS}${got(iss.input)}` })
    .max(MAX_DRAIN_TIMEOUT_MS, {
      error: (iss) => `expected an integer from 0 to ${MAX_DRAIN_TIMEOUT_MS}${got(iss.input)}`,
    }),
});
const undrainShowSchema = z.strictObject({ show: id() });

/** Request bodies of the admin drain endpoints, for the OpenAPI document. */
export const DRAIN_REQUEST_SCHEMAS = {
  DrainShowRequest: drainShowSchema,
  UndrainShowRequest: undrainShowSchema,
};

/** `{show, timeout_ms}` for `POST /v1/admin/drain-show` (show: its pk_show). */
export function parseDrainShow(body: unknown): ValidationResult<{ show: string; timeout_ms: number }> {
  return check(drainShowSchema, body);
}

/** `{show}` for `POST /v1/admin/undrain-show`. */
export function parseUndrainShow(body: unknown): ValidationResult<{ show: string }> {
  return check(undrainShowSchema, body);
}

/** `{booking}` for `POST /v1/confirm` and `/v1/rollback`. */
export function parseSettle(body: unknown): ValidationResult<{ booking: string }> {
  return check(settleSchema, body);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * `{ops:[…]}` for `POST /v1/batch`. The whole batch is validated before anything runs, so a
 * malformed batch changes nothing.
 */
export function parseBatch(body: unknown, maxOps = MAX_BATCH_OPS): ValidationResult<BatchOp[]> {
  if (!isPlainObject(body)) return { ok: false, message: `body: expected a JSON object${got(body)}` };
  for (const key of Object.keys(body)) {
    if (key !== 'ops')
      return {
        ok: false,
        message: nameOf(key) === undefined ? 'body: an unexpected field' : `${key}: unexpected field`,
      };
  }
  const ops = body.ops;
  if (ops === undefined) return { ok: false, message: 'ops: missing' };
  if (!Array.isArray(ops)) return { ok: false, message: `ops: expected an array${got(ops)}` };
  if (ops.length > maxOps) {
    return { ok: false, message: `ops: expected at most ${maxOps} ops, got ${ops.length}` };
  }
  const out: BatchOp[] = new Array<BatchOp>(ops.length);
  // The hot path of a batch: one safeParse per op and nothing else allocated on success (the
  // `ops[i]` prefix is built only for an error message).
  for (let i = 0; i < ops.length; i++) {
    const op: unknown = ops[i];
    if (!isPlainObject(op)) return { ok: false, message: `ops[${i}]: expected a JSON object${got(op)}` };
    const kind = op.op;
    const schema =
      kind === 'book'
        ? bookOpSchema
        : kind === 'confirm'
          ? confirmOpSchema
          : kind === 'rollback'
            ? rollbackOpSchema
            : undefined;
    if (schema === undefined) {
      return {
        ok: false,
        message:
          kind === undefined
            ? `ops[${i}].op: missing`
            : `ops[${i}].op: expected one of ${OP_NAMES.join(', ')}${got(kind)}`,
      };
    }
    const parsed = schema.safeParse(op);
    if (!parsed.success) return { ok: false, message: formatIssue(parsed.error.issues[0]!, `ops[${i}]`, op) };
    if (kind === 'book') {
      const empty = emptyBooking(parsed.data as BookingRequest, `ops[${i}]`);
      if (empty !== undefined) return { ok: false, message: empty };
    }
    out[i] = parsed.data;
  }
  return { ok: true, value: out };
}

const STATE_SORTS = ['utilization', 'name', 'cores', 'blocked'] as const;
const STATE_PARAMS = new Set(['vertex', 'show', 'top', 'sort', 'limit', 'cursor']);

/** A whole number from 1 to `max` written in plain digits, else NaN. */
function positive(value: string, max: number): number {
  const n = /^[0-9]{1,7}$/.test(value) ? Number(value) : NaN;
  return n >= 1 && n <= max ? n : NaN;
}

/**
 * The query of `GET /v1/state`: `vertex`, `show`, `top`, `sort`, `limit`, `cursor`, each at
 * most once. Query values are never repeated in a message (see the top of this file).
 */
export function parseStateQuery(params: URLSearchParams): ValidationResult<StateQuery> {
  const query: StateQuery = {};
  const seen = new Set<string>();
  for (const [key, value] of params) {
    if (!STATE_PARAMS.has(key)) {
      const name = nameOf(key);
      return {
        ok: false,
        message:
          name === undefined ? 'query: an unexpected parameter' : `${name}: unexpected query parameter`,
      };
    }
    if (seen.has(key)) return { ok: false, message: `${key}: given more than once` };
    seen.add(key);
    switch (key) {
      case 'vertex':
        if (!(VERTEX_KINDS as readonly string[]).includes(value)) {
          return { ok: false, message: `vertex: expected one of ${VERTEX_KINDS.join(', ')}` };
        }
        query.vertex = value as VertexKind;
        break;
      case 'show':
        if (value === '' || value.length > MAX_ID_LENGTH) {
          return {
            ok: false,
            message: `show: expected a non-empty string of at most ${MAX_ID_LENGTH} characters${got(value)}`,
          };
        }
        query.show = value;
        break;
      case 'top':
      case 'limit': {
        const n = positive(value, STATE_PAGE_MAX);
        if (Number.isNaN(n)) {
          return { ok: false, message: `${key}: expected a whole number from 1 to ${STATE_PAGE_MAX}` };
        }
        query[key] = n;
        break;
      }
      case 'sort':
        if (!(STATE_SORTS as readonly string[]).includes(value)) {
          return { ok: false, message: `sort: expected one of ${STATE_SORTS.join(', ')}` };
        }
        query.sort = value as StateQuery['sort'];
        break;
      case 'cursor': {
        const cursor = decodeCursor(value);
        if (cursor === undefined) {
          return { ok: false, message: 'cursor: expected the next_cursor of a previous page' };
        }
        query.cursor = cursor;
        break;
      }
    }
  }
  if (query.top !== undefined && (query.limit !== undefined || query.cursor !== undefined)) {
    return {
      ok: false,
      message: `top: not with ${query.limit !== undefined ? 'limit' : 'cursor'} (top answers one sorted list; limit and cursor page the whole state)`,
    };
  }
  return { ok: true, value: query };
}
