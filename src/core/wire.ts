/**
 * The NOTIFY wire contract (SPEC §2): payloads produced by Cuebot (and by `flip-show` /
 * `notify-test`), parsed and encoded here.
 *
 * Parse functions never throw: a bad payload becomes `{ ok: false, reason, error }` where
 * `reason` is a metrics label and `error` is one line naming the field and the problem.
 * Encode functions validate against the same schemas and throw on a value that the parser
 * would reject, so an encoded payload always parses back to the same value.
 *
 * Pure: no I/O, no clock.
 */
import { z } from 'zod';
import type { LimitChange, LimitField, ReleaseDelta } from './types.js';

export const RELEASE_CHANNEL = 'acct_release';
export const LIMIT_CHANGE_CHANNEL = 'acct_limit_change';
export const MANAGED_CHANGE_CHANNEL = 'acct_managed_change';

/** PostgreSQL's default NOTIFY payload limit, in UTF-8 bytes. */
export const MAX_PAYLOAD_BYTES = 8000;

/** Cuebot primary keys are VARCHAR(36). */
export const MAX_ID_LENGTH = 36;

export type DropReason = 'too_long' | 'not_json' | 'invalid';
export type ParseResult<T> = { ok: true; value: T } | { ok: false; reason: DropReason; error: string };

/** A release from the database feed. `cores` and `gpus` are deltas, always `<= 0`. */
export type ReleaseMessage = ReleaseDelta;

export type { LimitChange, LimitField };

/** The folder/job wire form: one message may carry one or both fields. */
export interface VertexLimitMessage {
  vertex: 'folder' | 'job';
  id: string;
  max_cores?: number;
  max_gpus?: number;
}

export interface ManagedChange {
  show: string;
  managed: boolean;
}

// ---------------------------------------------------------------------------------------
// Error text. Every schema reports "expected <contract>, got <value>" so the one-line error
// says both what the field must be and what arrived; a missing key reads "missing".

const MAX_SHOWN_STRING = 32;

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'number':
      if (Number.isInteger(v) && !Number.isSafeInteger(v)) return `${v} (outside the safe integer range)`;
      return String(v);
    case 'string':
      if (v.length > MAX_SHOWN_STRING) return `a string of ${v.length} characters`;
      return JSON.stringify(v);
    case 'object':
      return 'an object';
    case 'boolean':
      return String(v);
    default:
      return typeof v;
  }
}

function expected(contract: string, describe: (v: unknown) => string = describeValue) {
  return (iss: { input?: unknown }): string =>
    iss.input === undefined ? 'missing' : `expected ${contract}, got ${describe(iss.input)}`;
}

function describeIdValue(v: unknown): string {
  if (typeof v !== 'string') return describeValue(v);
  if (v.length === 0) return 'an empty string';
  return v.length > MAX_ID_LENGTH ? `a string of ${v.length} characters` : JSON.stringify(v);
}

// ---------------------------------------------------------------------------------------
// Schemas, compiled once.

const idSchema = z
  .string({ error: expected(`a string of 1..${MAX_ID_LENGTH} characters`, describeIdValue) })
  .min(1)
  .max(MAX_ID_LENGTH);

/** Release delta: a safe integer <= 0. */
const deltaSchema = z.int({ error: expected('an integer <= 0') }).max(0);

/** A cap: a safe integer >= -1 (-1 = unlimited). */
const limitSchema = z.int({ error: expected('an integer >= -1') }).min(-1);

const releaseSchema = z.object({
  show: idSchema,
  alloc: idSchema,
  folder: idSchema,
  job: idSchema,
  cores: deltaSchema,
  gpus: deltaSchema,
});

const subLimitSchema = z.object({
  vertex: z.literal('sub'),
  show: idSchema,
  alloc: idSchema,
  burst: limitSchema,
});

function vertexLimitSchema<V extends 'folder' | 'job'>(vertex: V) {
  return z
    .object({
      vertex: z.literal(vertex),
      id: idSchema,
      max_cores: limitSchema.optional(),
      max_gpus: limitSchema.optional(),
    })
    .refine((m) => m.max_cores !== undefined || m.max_gpus !== undefined, {
      message: `max_cores, max_gpus: missing (a ${vertex} limit change needs at least one)`,
    });
}

const VERTICES = ['sub', 'folder', 'job'] as const;

const limitChangeSchema = z.discriminatedUnion(
  'vertex',
  [subLimitSchema, vertexLimitSchema('folder'), vertexLimitSchema('job')],
  {
    error: (iss) => {
      const input = iss.input as Record<string, unknown> | undefined;
      const v = input?.vertex;
      const known = VERTICES.map((x) => `"${x}"`).join(', ');
      return v === undefined ? 'missing' : `unknown value ${describeValue(v)} (expected one of ${known})`;
    },
  },
);

const managedChangeSchema = z.object({
  show: idSchema,
  managed: z.boolean({ error: expected('a boolean') }),
});

// Encoder-only: layer/dept are ignored by the parser but, when we send them, must be ids.
const releaseEncodeSchema = releaseSchema.extend({
  layer: idSchema.optional(),
  dept: idSchema.optional(),
});

// ---------------------------------------------------------------------------------------
// Shared parse steps.

type Failure = { ok: false; reason: DropReason; error: string };

/** UTF-8 byte length without allocating; a lone surrogate counts as U+FFFD (3 bytes). */
export function utf8ByteLength(s: string): number {
  let bytes = 0;
  const n = s.length;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

function checkLength(payload: string): Failure | undefined {
  // One UTF-16 code unit encodes to 1..3 UTF-8 bytes (a surrogate pair: 2 units, 4 bytes),
  // so a payload of at most MAX/3 code units can never be too long: skip the count.
  if (payload.length * 3 <= MAX_PAYLOAD_BYTES) return undefined;
  const bytes = utf8ByteLength(payload);
  if (bytes <= MAX_PAYLOAD_BYTES) return undefined;
  return {
    ok: false,
    reason: 'too_long',
    error: `payload is ${bytes} bytes, over the ${MAX_PAYLOAD_BYTES}-byte limit`,
  };
}

function jsonKind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/** Length check, then JSON.parse, then "is a plain JSON object". */
function decodeObject(payload: string): Failure | { ok: true; value: object } {
  if (typeof payload !== 'string') {
    return { ok: false, reason: 'not_json', error: `payload is ${jsonKind(payload)}, expected a string` };
  }
  const tooLong = checkLength(payload);
  if (tooLong) return tooLong;
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    return { ok: false, reason: 'not_json', error: `payload is not JSON: ${msg.replace(/\s+/g, ' ')}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: 'not_json', error: `payload is ${jsonKind(value)}, expected a JSON object` };
  }
  return { ok: true, value };
}

function invalid(error: z.ZodError): Failure {
  // Report the first issue only: one line, and it is the first field in wire order.
  const issue = error.issues[0];
  if (issue === undefined) return { ok: false, reason: 'invalid', error: 'invalid payload' };
  const path = issue.path.map(String).join('.');
  return { ok: false, reason: 'invalid', error: path === '' ? issue.message : `${path}: ${issue.message}` };
}

// `+ 0` turns a JSON `-0` into `0`.
function toRelease(m: z.output<typeof releaseSchema>): ReleaseMessage {
  return { show: m.show, alloc: m.alloc, folder: m.folder, job: m.job, cores: m.cores + 0, gpus: m.gpus + 0 };
}

function toLimitChanges(m: z.output<typeof limitChangeSchema>): LimitChange[] {
  if (m.vertex === 'sub') return [{ vertex: 'sub', show: m.show, alloc: m.alloc, burst: m.burst + 0 }];
  const out: LimitChange[] = [];
  if (m.max_cores !== undefined)
    out.push({ vertex: m.vertex, id: m.id, field: 'max_cores', value: m.max_cores + 0 });
  if (m.max_gpus !== undefined)
    out.push({ vertex: m.vertex, id: m.id, field: 'max_gpus', value: m.max_gpus + 0 });
  return out;
}

// ---------------------------------------------------------------------------------------
// Parsers (never throw).

/** Parse an `acct_release` payload. `layer`, `dept` and unknown fields are ignored. */
export function parseRelease(payload: string): ParseResult<ReleaseMessage> {
  try {
    const decoded = decodeObject(payload);
    if (!decoded.ok) return decoded;
    const r = releaseSchema.safeParse(decoded.value);
    return r.success ? { ok: true, value: toRelease(r.data) } : invalid(r.error);
  } catch (e) {
    return internalFailure(e);
  }
}

/**
 * Parse an `acct_limit_change` payload into single-field changes: a sub message gives one;
 * a folder/job message gives one per field present, `max_cores` first. All or nothing.
 */
export function parseLimitChange(payload: string): ParseResult<LimitChange[]> {
  try {
    const decoded = decodeObject(payload);
    if (!decoded.ok) return decoded;
    const r = limitChangeSchema.safeParse(decoded.value);
    return r.success ? { ok: true, value: toLimitChanges(r.data) } : invalid(r.error);
  } catch (e) {
    return internalFailure(e);
  }
}

/** Parse an `acct_managed_change` payload. */
export function parseManagedChange(payload: string): ParseResult<ManagedChange> {
  try {
    const decoded = decodeObject(payload);
    if (!decoded.ok) return decoded;
    const r = managedChangeSchema.safeParse(decoded.value);
    return r.success ? { ok: true, value: { show: r.data.show, managed: r.data.managed } } : invalid(r.error);
  } catch (e) {
    return internalFailure(e);
  }
}

// Defence in depth: the parsers must never throw into the listener (e.g. a getter-free
// JSON value cannot throw, but a future schema change might).
function internalFailure(e: unknown): Failure {
  const msg = e instanceof Error ? e.message : String(e);
  return { ok: false, reason: 'invalid', error: `validation failed: ${msg.replace(/\s+/g, ' ')}` };
}

// ---------------------------------------------------------------------------------------
// Encoders (throw on a value the parser would reject).

function encodeChecked(channel: string, schema: z.ZodType, wire: object): string {
  const r = schema.safeParse(wire);
  if (!r.success) throw new Error(`cannot encode ${channel} payload: ${invalid(r.error).error}`);
  const payload = JSON.stringify(wire);
  const tooLong = checkLength(payload);
  if (tooLong) throw new Error(`cannot encode ${channel} payload: ${tooLong.error}`);
  return payload;
}

/** `{"show","alloc","folder","job"[,"layer"][,"dept"],"cores","gpus"}` */
export function encodeRelease(m: ReleaseMessage & { layer?: string; dept?: string }): string {
  const wire: Record<string, unknown> = { show: m.show, alloc: m.alloc, folder: m.folder, job: m.job };
  if (m.layer !== undefined) wire.layer = m.layer;
  if (m.dept !== undefined) wire.dept = m.dept;
  wire.cores = m.cores;
  wire.gpus = m.gpus;
  return encodeChecked(RELEASE_CHANNEL, releaseEncodeSchema, wire);
}

/**
 * `{"vertex":"sub","show","alloc","burst"}` or `{"vertex":"folder"|"job","id"[,"max_cores"][,"max_gpus"]}`.
 * Accepts a parsed single-field change or the folder/job wire form with one or both fields.
 */
export function encodeLimitChange(c: LimitChange | VertexLimitMessage): string {
  let wire: Record<string, unknown>;
  if (c.vertex === 'sub') {
    wire = { vertex: 'sub', show: c.show, alloc: c.alloc, burst: c.burst };
  } else if ('field' in c) {
    if (c.field !== 'max_cores' && c.field !== 'max_gpus') {
      throw new Error(
        `cannot encode ${LIMIT_CHANGE_CHANNEL} payload: field: unknown value ${describeValue(c.field)}`,
      );
    }
    wire = { vertex: c.vertex, id: c.id, [c.field]: c.value };
  } else {
    wire = { vertex: c.vertex, id: c.id };
    if (c.max_cores !== undefined) wire.max_cores = c.max_cores;
    if (c.max_gpus !== undefined) wire.max_gpus = c.max_gpus;
  }
  return encodeChecked(LIMIT_CHANGE_CHANNEL, limitChangeSchema, wire);
}

/** `{"show","managed"}` */
export function encodeManagedChange(m: ManagedChange): string {
  return encodeChecked(MANAGED_CHANGE_CHANNEL, managedChangeSchema, { show: m.show, managed: m.managed });
}
