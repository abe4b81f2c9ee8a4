/**
 * Malformed NOTIFY payloads for the flood phase, one of each kind SPEC §2 says to drop: not
 * JSON, wrong types, missing ids, non-integer numbers, unknown vertex, out-of-range values.
 * Every payload is checked against the real parsers when built, so a "bad" payload that would
 * in fact apply can never slip into the flood.
 */
import { randomUUID } from 'node:crypto';
import {
  LIMIT_CHANGE_CHANNEL,
  RELEASE_CHANNEL,
  parseLimitChange,
  parseRelease,
} from '../../src/core/wire.js';

export interface BadPayload {
  channel: typeof RELEASE_CHANNEL | typeof LIMIT_CHANGE_CHANNEL;
  kind: string;
  payload: string;
}

const id = () => randomUUID();

function release(overrides: Record<string, unknown>, drop: string[] = []): string {
  const base: Record<string, unknown> = {
    show: id(),
    alloc: id(),
    folder: id(),
    job: id(),
    layer: id(),
    dept: id(),
    cores: -1,
    gpus: 0,
  };
  for (const key of drop) delete base[key];
  return JSON.stringify({ ...base, ...overrides });
}

const RELEASE_KINDS: [string, (n: number) => string][] = [
  ['not JSON', (n) => `not json ${n} {`],
  ['truncated JSON', () => release({}).slice(0, 40)],
  ['empty', (n) => ' '.repeat(1 + (n % 50))],
  ['array', () => `[${JSON.stringify(id())}]`],
  ['missing job', () => release({}, ['job'])],
  ['missing show', () => release({}, ['show'])],
  ['cores as a string', () => release({ cores: '-4' })],
  ['fractional cores', () => release({ cores: -1.5 })],
  ['positive cores', () => release({ cores: 8 })],
  ['gpus null', () => release({ gpus: null })],
  ['id too long', () => release({ job: `${id()}x` })],
  ['empty id', () => release({ folder: '' })],
  ['numeric id', (n) => release({ alloc: n })],
  ['limit change on the release channel', () => JSON.stringify({ vertex: 'job', id: id(), max_cores: 5 })],
  ['7900 bytes of junk', (n) => `{"junk":"${'x'.repeat(7_880)}${n}`],
];

const LIMIT_KINDS: [string, (n: number) => string][] = [
  ['not JSON', (n) => `{vertex: job ${n}`],
  ['null', (n) => (n % 2 === 0 ? 'null' : `null${' '.repeat(n % 7)}`)],
  ['unknown vertex', () => JSON.stringify({ vertex: 'layer', id: id(), max_cores: 10 })],
  ['sub without burst', () => JSON.stringify({ vertex: 'sub', show: id(), alloc: id() })],
  ['folder without a field', () => JSON.stringify({ vertex: 'folder', id: id() })],
  ['max_cores below -1', () => JSON.stringify({ vertex: 'job', id: id(), max_cores: -2 })],
  ['fractional max_cores', () => JSON.stringify({ vertex: 'job', id: id(), max_cores: 2.5 })],
  ['burst as a string', () => JSON.stringify({ vertex: 'sub', show: id(), alloc: id(), burst: '10' })],
  ['numeric id', (n) => JSON.stringify({ vertex: 'folder', id: n, max_gpus: 1 })],
  [
    'one good field, one bad',
    () => JSON.stringify({ vertex: 'job', id: id(), max_cores: 10, max_gpus: 'x' }),
  ],
  ['release on the limit channel', () => release({})],
];

/** `count` bad payloads for one transaction, alternating channels, all distinct. */
export function badPayloads(count: number, sequence: number): BadPayload[] {
  const out: BadPayload[] = [];
  for (let i = 0; i < count; i++) {
    const n = sequence * count + i;
    const onRelease = n % 2 === 0;
    const kinds = onRelease ? RELEASE_KINDS : LIMIT_KINDS;
    const [kind, make] = kinds[Math.floor(n / 2) % kinds.length]!;
    const payload = make(n);
    const channel = onRelease ? RELEASE_CHANNEL : LIMIT_CHANGE_CHANNEL;
    const parsed = onRelease ? parseRelease(payload) : parseLimitChange(payload);
    if (parsed.ok) throw new Error(`flood: the "${kind}" payload parses as valid: ${payload.slice(0, 120)}`);
    out.push({ channel, kind, payload });
  }
  return out;
}
