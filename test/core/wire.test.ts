import { Buffer } from 'node:buffer';

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  LIMIT_CHANGE_CHANNEL,
  MANAGED_CHANGE_CHANNEL,
  MAX_PAYLOAD_BYTES,
  RELEASE_CHANNEL,
  encodeLimitChange,
  encodeManagedChange,
  encodeRelease,
  parseLimitChange,
  parseManagedChange,
  parseRelease,
  utf8ByteLength,
  type DropReason,
  type LimitChange,
  type ManagedChange,
  type ParseResult,
  type ReleaseMessage,
  type VertexLimitMessage,
} from '../../src/core/wire.js';

const j = (v: unknown): string => JSON.stringify(v);

const release = { show: 's1', alloc: 'a1', folder: 'f1', job: 'j1', cores: -10, gpus: -1 };
const releaseWire = { ...release, layer: 'l1', dept: 'd1' };

describe('channels', () => {
  it('has the SPEC §2 channel names', () => {
    expect([RELEASE_CHANNEL, LIMIT_CHANGE_CHANNEL, MANAGED_CHANGE_CHANNEL]).toEqual([
      'acct_release',
      'acct_limit_change',
      'acct_managed_change',
    ]);
    expect(MAX_PAYLOAD_BYTES).toBe(8000);
  });
});

describe('parseRelease: valid forms', () => {
  it('parses the SPEC example, ignoring layer and dept', () => {
    expect(parseRelease(j(releaseWire))).toEqual({ ok: true, value: release });
  });

  it('parses a release without layer/dept', () => {
    expect(parseRelease(j(release))).toEqual({ ok: true, value: release });
  });

  it('ignores layer/dept of any type and unknown fields, never returning them', () => {
    const r = parseRelease(j({ ...release, layer: 5, dept: null, proc: 'p1', extra: { a: 1 } }));
    expect(r).toEqual({ ok: true, value: release });
    expect(r.ok && Object.keys(r.value).sort()).toEqual(['alloc', 'cores', 'folder', 'gpus', 'job', 'show']);
  });

  it('accepts zero deltas and normalizes -0 to 0', () => {
    const r = parseRelease('{"show":"s","alloc":"a","folder":"f","job":"j","cores":-0,"gpus":0}');
    expect(r.ok).toBe(true);
    expect(r.ok && Object.is(r.value.cores, 0)).toBe(true);
  });

  it('accepts a UUID id of exactly 36 characters and whitespace around the JSON', () => {
    const id = '0b7e4d8c-9a3f-4f2e-8c1d-2a6b5e9f0c11';
    expect(id).toHaveLength(36);
    const r = parseRelease(`  ${j({ ...release, job: id })}\n`);
    expect(r).toEqual({ ok: true, value: { ...release, job: id } });
  });
});

describe('parseLimitChange: valid forms', () => {
  it('sub burst', () => {
    expect(parseLimitChange(j({ vertex: 'sub', show: 's1', alloc: 'a1', burst: 200 }))).toEqual({
      ok: true,
      value: [{ vertex: 'sub', show: 's1', alloc: 'a1', burst: 200 }],
    });
  });

  it('folder with one field gives one change', () => {
    expect(parseLimitChange(j({ vertex: 'folder', id: 'f1', max_gpus: 4 }))).toEqual({
      ok: true,
      value: [{ vertex: 'folder', id: 'f1', field: 'max_gpus', value: 4 }],
    });
  });

  it('folder with both fields gives two changes, max_cores first (whatever the key order)', () => {
    const expected = [
      { vertex: 'folder', id: 'f1', field: 'max_cores', value: 20 },
      { vertex: 'folder', id: 'f1', field: 'max_gpus', value: 4 },
    ];
    expect(parseLimitChange(j({ vertex: 'folder', id: 'f1', max_cores: 20, max_gpus: 4 }))).toEqual({
      ok: true,
      value: expected,
    });
    expect(parseLimitChange(j({ max_gpus: 4, id: 'f1', vertex: 'folder', max_cores: 20 }))).toEqual({
      ok: true,
      value: expected,
    });
  });

  it('job with max_cores -1 (unlimited)', () => {
    expect(parseLimitChange(j({ vertex: 'job', id: 'j1', max_cores: -1 }))).toEqual({
      ok: true,
      value: [{ vertex: 'job', id: 'j1', field: 'max_cores', value: -1 }],
    });
  });

  it('job with max_gpus 0 and unknown fields', () => {
    expect(parseLimitChange(j({ vertex: 'job', id: 'j1', max_gpus: 0, min_cores: 100, note: 'x' }))).toEqual({
      ok: true,
      value: [{ vertex: 'job', id: 'j1', field: 'max_gpus', value: 0 }],
    });
  });

  it('sub burst 0 and -1 are valid values', () => {
    for (const burst of [0, -1]) {
      const r = parseLimitChange(j({ vertex: 'sub', show: 's', alloc: 'a', burst }));
      expect(r).toEqual({ ok: true, value: [{ vertex: 'sub', show: 's', alloc: 'a', burst }] });
    }
  });
});

describe('parseManagedChange: valid forms', () => {
  it.each([true, false])('managed %s', (managed) => {
    expect(parseManagedChange(j({ show: 's1', managed }))).toEqual({
      ok: true,
      value: { show: 's1', managed },
    });
  });
});

// ---------------------------------------------------------------------------------------

type Parser = (p: string) => ParseResult<unknown>;
const parsers: Record<'release' | 'limit' | 'managed', Parser> = {
  release: parseRelease,
  limit: parseLimitChange,
  managed: parseManagedChange,
};

const id37 = 'x'.repeat(37);

interface BadCase {
  name: string;
  parser: keyof typeof parsers;
  payload: string;
  reason: DropReason;
  /** exact error text, or a pattern */
  error: string | RegExp;
}

const bad: BadCase[] = [
  // not JSON / not an object
  {
    name: 'garbage',
    parser: 'release',
    payload: 'hello',
    reason: 'not_json',
    error: /^payload is not JSON: /,
  },
  {
    name: 'empty payload',
    parser: 'release',
    payload: '',
    reason: 'not_json',
    error: /^payload is not JSON: /,
  },
  {
    name: 'truncated JSON',
    parser: 'limit',
    payload: '{"vertex":"sub"',
    reason: 'not_json',
    error: /not JSON/,
  },
  {
    name: 'raw NaN',
    parser: 'release',
    payload: j(release).replace('-10', 'NaN'),
    reason: 'not_json',
    error: /not JSON/,
  },
  {
    name: 'JSON array',
    parser: 'release',
    payload: j([release]),
    reason: 'not_json',
    error: 'payload is an array, expected a JSON object',
  },
  {
    name: 'JSON string',
    parser: 'limit',
    payload: j(j({ vertex: 'sub' })),
    reason: 'not_json',
    error: 'payload is a string, expected a JSON object',
  },
  {
    name: 'JSON null',
    parser: 'managed',
    payload: 'null',
    reason: 'not_json',
    error: 'payload is null, expected a JSON object',
  },
  {
    name: 'JSON number',
    parser: 'managed',
    payload: '42',
    reason: 'not_json',
    error: 'payload is a number, expected a JSON object',
  },

  // release: numbers
  {
    name: 'cores as string',
    parser: 'release',
    payload: j({ ...release, cores: '-10' }),
    reason: 'invalid',
    error: 'cores: expected an integer <= 0, got "-10"',
  },
  {
    name: 'cores float',
    parser: 'release',
    payload: j({ ...release, cores: -1.5 }),
    reason: 'invalid',
    error: 'cores: expected an integer <= 0, got -1.5',
  },
  {
    name: 'cores float 1.5',
    parser: 'release',
    payload: j({ ...release, cores: 1.5 }),
    reason: 'invalid',
    error: 'cores: expected an integer <= 0, got 1.5',
  },
  {
    name: 'positive release cores',
    parser: 'release',
    payload: j({ ...release, cores: 10 }),
    reason: 'invalid',
    error: 'cores: expected an integer <= 0, got 10',
  },
  {
    name: 'positive release gpus',
    parser: 'release',
    payload: j({ ...release, gpus: 1 }),
    reason: 'invalid',
    error: 'gpus: expected an integer <= 0, got 1',
  },
  {
    name: 'cores "NaN" string',
    parser: 'release',
    payload: j({ ...release, cores: 'NaN' }),
    reason: 'invalid',
    error: 'cores: expected an integer <= 0, got "NaN"',
  },
  {
    name: 'gpus 1e400 (Infinity)',
    parser: 'release',
    payload: j(release).replace('"gpus":-1', '"gpus":-1e400'),
    reason: 'invalid',
    error: 'gpus: expected an integer <= 0, got -Infinity',
  },
  {
    name: 'cores outside the safe integer range',
    parser: 'release',
    payload: j(release).replace('"cores":-10', '"cores":-9007199254740993'),
    reason: 'invalid',
    error: 'cores: expected an integer <= 0, got -9007199254740992 (outside the safe integer range)',
  },
  {
    name: 'cores null',
    parser: 'release',
    payload: j({ ...release, cores: null }),
    reason: 'invalid',
    error: 'cores: expected an integer <= 0, got null',
  },
  {
    name: 'gpus boolean',
    parser: 'release',
    payload: j({ ...release, gpus: false }),
    reason: 'invalid',
    error: 'gpus: expected an integer <= 0, got false',
  },
  {
    name: 'cores missing',
    parser: 'release',
    payload: j({ ...release, cores: undefined }),
    reason: 'invalid',
    error: 'cores: missing',
  },

  // release: ids
  {
    name: 'missing job',
    parser: 'release',
    payload: j({ ...release, job: undefined }),
    reason: 'invalid',
    error: 'job: missing',
  },
  {
    name: 'empty folder id',
    parser: 'release',
    payload: j({ ...release, folder: '' }),
    reason: 'invalid',
    error: 'folder: expected a string of 1..36 characters, got an empty string',
  },
  {
    name: 'alloc id too long',
    parser: 'release',
    payload: j({ ...release, alloc: id37 }),
    reason: 'invalid',
    error: 'alloc: expected a string of 1..36 characters, got a string of 37 characters',
  },
  {
    name: 'show id as number',
    parser: 'release',
    payload: j({ ...release, show: 5 }),
    reason: 'invalid',
    error: 'show: expected a string of 1..36 characters, got 5',
  },
  {
    name: 'show id as object',
    parser: 'release',
    payload: j({ ...release, show: { id: 's1' } }),
    reason: 'invalid',
    error: 'show: expected a string of 1..36 characters, got an object',
  },
  { name: 'empty object', parser: 'release', payload: '{}', reason: 'invalid', error: 'show: missing' },

  // limit change
  {
    name: 'unknown vertex',
    parser: 'limit',
    payload: j({ vertex: 'layer', id: 'l1', max_cores: 10 }),
    reason: 'invalid',
    error: 'vertex: unknown value "layer" (expected one of "sub", "folder", "job")',
  },
  {
    name: 'vertex as number',
    parser: 'limit',
    payload: j({ vertex: 1, id: 'l1', max_cores: 10 }),
    reason: 'invalid',
    error: /^vertex: unknown value 1 /,
  },
  {
    name: 'vertex missing',
    parser: 'limit',
    payload: j({ id: 'f1', max_cores: 10 }),
    reason: 'invalid',
    error: 'vertex: missing',
  },
  {
    name: 'folder with neither field',
    parser: 'limit',
    payload: j({ vertex: 'folder', id: 'f1' }),
    reason: 'invalid',
    error: 'max_cores, max_gpus: missing (a folder limit change needs at least one)',
  },
  {
    name: 'job with neither field (only unknown ones)',
    parser: 'limit',
    payload: j({ vertex: 'job', id: 'j1', min_cores: 1 }),
    reason: 'invalid',
    error: 'max_cores, max_gpus: missing (a job limit change needs at least one)',
  },
  {
    name: 'limit below -1',
    parser: 'limit',
    payload: j({ vertex: 'job', id: 'j1', max_cores: -2 }),
    reason: 'invalid',
    error: 'max_cores: expected an integer >= -1, got -2',
  },
  {
    name: 'burst below -1',
    parser: 'limit',
    payload: j({ vertex: 'sub', show: 's1', alloc: 'a1', burst: -100 }),
    reason: 'invalid',
    error: 'burst: expected an integer >= -1, got -100',
  },
  {
    name: 'burst as string',
    parser: 'limit',
    payload: j({ vertex: 'sub', show: 's1', alloc: 'a1', burst: '200' }),
    reason: 'invalid',
    error: 'burst: expected an integer >= -1, got "200"',
  },
  {
    name: 'float max_gpus',
    parser: 'limit',
    payload: j({ vertex: 'folder', id: 'f1', max_gpus: 2.5 }),
    reason: 'invalid',
    error: 'max_gpus: expected an integer >= -1, got 2.5',
  },
  {
    name: 'null max_cores (present but not a number)',
    parser: 'limit',
    payload: j({ vertex: 'folder', id: 'f1', max_cores: null, max_gpus: 4 }),
    reason: 'invalid',
    error: 'max_cores: expected an integer >= -1, got null',
  },
  {
    name: 'both fields, one bad: never half a message',
    parser: 'limit',
    payload: j({ vertex: 'folder', id: 'f1', max_cores: 20, max_gpus: -5 }),
    reason: 'invalid',
    error: 'max_gpus: expected an integer >= -1, got -5',
  },
  {
    name: 'sub missing alloc',
    parser: 'limit',
    payload: j({ vertex: 'sub', show: 's1', burst: 10 }),
    reason: 'invalid',
    error: 'alloc: missing',
  },
  {
    name: 'folder missing id',
    parser: 'limit',
    payload: j({ vertex: 'folder', max_cores: 10 }),
    reason: 'invalid',
    error: 'id: missing',
  },
  {
    name: 'job empty id',
    parser: 'limit',
    payload: j({ vertex: 'job', id: '', max_cores: 10 }),
    reason: 'invalid',
    error: 'id: expected a string of 1..36 characters, got an empty string',
  },
  {
    name: 'job id too long',
    parser: 'limit',
    payload: j({ vertex: 'job', id: id37, max_cores: 10 }),
    reason: 'invalid',
    error: 'id: expected a string of 1..36 characters, got a string of 37 characters',
  },

  // managed change
  {
    name: 'managed as string',
    parser: 'managed',
    payload: j({ show: 's1', managed: 'true' }),
    reason: 'invalid',
    error: 'managed: expected a boolean, got "true"',
  },
  {
    name: 'managed as number',
    parser: 'managed',
    payload: j({ show: 's1', managed: 1 }),
    reason: 'invalid',
    error: 'managed: expected a boolean, got 1',
  },
  {
    name: 'managed missing',
    parser: 'managed',
    payload: j({ show: 's1' }),
    reason: 'invalid',
    error: 'managed: missing',
  },
  {
    name: 'show missing',
    parser: 'managed',
    payload: j({ managed: true }),
    reason: 'invalid',
    error: 'show: missing',
  },
];

describe('bad payloads', () => {
  it.each(bad)('$parser: $name -> $reason', ({ parser, payload, reason, error }) => {
    const r = parsers[parser](payload);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.reason).toBe(reason);
    if (typeof error === 'string') expect(r.error).toBe(error);
    else expect(r.error).toMatch(error);
    expect(r.error).not.toMatch(/\n/);
  });

  it('every parser rejects every non-object / non-JSON case', () => {
    for (const payload of ['', 'x', '[]', '"s"', 'true', '1', 'null', '{']) {
      for (const parse of Object.values(parsers)) {
        const r = parse(payload);
        expect(r.ok ? 'ok' : r.reason).toBe('not_json');
      }
    }
  });

  it('a long string value is not echoed in full', () => {
    const r = parseRelease(j({ ...release, cores: 'y'.repeat(5000) }));
    expect(r).toEqual({
      ok: false,
      reason: 'invalid',
      error: 'cores: expected an integer <= 0, got a string of 5000 characters',
    });
  });
});

describe('payload size (UTF-8 bytes, not characters)', () => {
  // '€' is 1 UTF-16 unit and 3 UTF-8 bytes; '😀' is 2 units and 4 bytes.
  const padTo = (bytes: number, unit: string): string => {
    const base = j({ ...release, pad: '' });
    const room = bytes - Buffer.byteLength(base);
    const unitBytes = Buffer.byteLength(unit);
    const pad = unit.repeat(Math.floor(room / unitBytes)) + 'a'.repeat(room % unitBytes);
    const payload = j({ ...release, pad });
    expect(Buffer.byteLength(payload)).toBe(bytes);
    return payload;
  };

  it('accepts exactly MAX_PAYLOAD_BYTES of multi-byte text', () => {
    expect(parseRelease(padTo(MAX_PAYLOAD_BYTES, '€'))).toEqual({ ok: true, value: release });
    expect(parseRelease(padTo(MAX_PAYLOAD_BYTES, '😀'))).toEqual({ ok: true, value: release });
  });

  it('rejects one byte more as too_long even though it has far fewer than 8000 characters', () => {
    for (const unit of ['€', '😀', 'é']) {
      const payload = padTo(MAX_PAYLOAD_BYTES + 1, unit);
      expect(payload.length).toBeLessThan(MAX_PAYLOAD_BYTES);
      for (const parse of Object.values(parsers)) {
        expect(parse(payload)).toEqual({
          ok: false,
          reason: 'too_long',
          error: 'payload is 8001 bytes, over the 8000-byte limit',
        });
      }
    }
  });

  it('checks the size before JSON: an oversized non-JSON payload is too_long', () => {
    const r = parseLimitChange('€'.repeat(3000));
    expect(r.ok ? 'ok' : r.reason).toBe('too_long');
  });

  it('a very large payload is too_long', () => {
    const r = parseManagedChange(j({ show: 's', managed: true, pad: 'a'.repeat(1_000_000) }));
    expect(r.ok ? 'ok' : r.reason).toBe('too_long');
  });

  it('utf8ByteLength agrees with Buffer.byteLength, including lone surrogates', () => {
    expect(utf8ByteLength('\ud800')).toBe(3);
    expect(utf8ByteLength('\udc00\ud800')).toBe(6);
    const units = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.string({ unit: fc.integer({ min: 0xd7f0, max: 0xe010 }).map((c) => String.fromCharCode(c)) }),
    );
    fc.assert(
      fc.property(
        fc.array(units).map((a) => a.join('')),
        (s) => {
          expect(utf8ByteLength(s)).toBe(Buffer.byteLength(s, 'utf8'));
        },
      ),
    );
  });
});

// ---------------------------------------------------------------------------------------

describe('encoders: exact wire shapes', () => {
  it('release, with and without layer/dept, in wire key order', () => {
    expect(encodeRelease(releaseWire)).toBe(
      '{"show":"s1","alloc":"a1","folder":"f1","job":"j1","layer":"l1","dept":"d1","cores":-10,"gpus":-1}',
    );
    expect(encodeRelease(release)).toBe(
      '{"show":"s1","alloc":"a1","folder":"f1","job":"j1","cores":-10,"gpus":-1}',
    );
  });

  it('release never leaks extra properties of the argument', () => {
    const withExtra = { ...release, proc: 'p1' } as ReleaseMessage;
    expect(JSON.parse(encodeRelease(withExtra))).not.toHaveProperty('proc');
  });

  it('limit changes', () => {
    expect(encodeLimitChange({ vertex: 'sub', show: 's1', alloc: 'a1', burst: 200 })).toBe(
      '{"vertex":"sub","show":"s1","alloc":"a1","burst":200}',
    );
    expect(encodeLimitChange({ vertex: 'folder', id: 'f1', max_cores: 20, max_gpus: 4 })).toBe(
      '{"vertex":"folder","id":"f1","max_cores":20,"max_gpus":4}',
    );
    expect(encodeLimitChange({ vertex: 'job', id: 'j1', max_cores: -1 })).toBe(
      '{"vertex":"job","id":"j1","max_cores":-1}',
    );
    expect(encodeLimitChange({ vertex: 'job', id: 'j1', field: 'max_gpus', value: 2 })).toBe(
      '{"vertex":"job","id":"j1","max_gpus":2}',
    );
  });

  it('managed change', () => {
    expect(encodeManagedChange({ show: 's1', managed: true })).toBe('{"show":"s1","managed":true}');
    expect(encodeManagedChange({ show: 's1', managed: false })).toBe('{"show":"s1","managed":false}');
  });

  it('refuses to encode what the parser would reject, naming the field', () => {
    expect(() => encodeRelease({ ...release, cores: 1 })).toThrow(
      'cannot encode acct_release payload: cores: expected an integer <= 0, got 1',
    );
    expect(() => encodeRelease({ ...release, gpus: Number.NaN })).toThrow(
      'gpus: expected an integer <= 0, got NaN',
    );
    expect(() => encodeRelease({ ...release, layer: '' })).toThrow(
      'layer: expected a string of 1..36 characters',
    );
    expect(() => encodeRelease({ ...release, show: '' })).toThrow(
      'show: expected a string of 1..36 characters',
    );
    expect(() => encodeLimitChange({ vertex: 'folder', id: 'f1' })).toThrow('max_cores, max_gpus: missing');
    expect(() => encodeLimitChange({ vertex: 'job', id: 'j1', field: 'max_cores', value: -2 })).toThrow(
      'max_cores: expected an integer >= -1, got -2',
    );
    expect(() => encodeLimitChange({ vertex: 'sub', show: 's', alloc: 'a', burst: 1.5 })).toThrow(
      'burst: expected an integer >= -1, got 1.5',
    );
    expect(() =>
      encodeLimitChange({ vertex: 'job', id: 'j1', field: 'min_cores' as 'max_cores', value: 1 }),
    ).toThrow('field: unknown value "min_cores"');
    expect(() => encodeLimitChange({ vertex: 'layer' as 'job', id: 'l1', max_cores: 1 })).toThrow(
      'vertex: unknown value "layer"',
    );
    expect(() => encodeManagedChange({ show: 's1', managed: 'yes' as unknown as boolean })).toThrow(
      'managed: expected a boolean, got "yes"',
    );
  });
});

// ---------------------------------------------------------------------------------------
// Properties

const maxId = (arb: fc.Arbitrary<string>) => arb.filter((s) => s.length >= 1 && s.length <= 36);
const idArb: fc.Arbitrary<string> = fc.oneof(
  fc.uuid(),
  maxId(fc.string({ minLength: 1, maxLength: 36 })),
  // up to 18 code points: at most 36 UTF-16 units even when all are astral
  maxId(fc.string({ unit: 'binary', minLength: 1, maxLength: 18 })),
  maxId(
    fc.string({
      unit: fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
      minLength: 1,
      maxLength: 36,
    }),
  ),
);
const deltaArb = fc.oneof(
  fc.integer({ min: -64, max: 0 }),
  fc.maxSafeNat().map((n) => 0 - n),
);
const limitArb = fc.oneof(fc.integer({ min: -1, max: 10_000 }), fc.maxSafeNat());

const releaseArb: fc.Arbitrary<ReleaseMessage> = fc.record({
  show: idArb,
  alloc: idArb,
  folder: idArb,
  job: idArb,
  cores: deltaArb,
  gpus: deltaArb,
});
const vertexArb = fc.constantFrom('folder' as const, 'job' as const);
const limitChangeArb: fc.Arbitrary<LimitChange> = fc.oneof(
  fc.record({ vertex: fc.constant('sub' as const), show: idArb, alloc: idArb, burst: limitArb }),
  fc.record({
    vertex: vertexArb,
    id: idArb,
    field: fc.constantFrom('max_cores' as const, 'max_gpus' as const),
    value: limitArb,
  }),
);
const vertexMessageArb: fc.Arbitrary<VertexLimitMessage> = fc
  .record(
    { vertex: vertexArb, id: idArb, max_cores: limitArb, max_gpus: limitArb },
    { requiredKeys: ['vertex', 'id'] },
  )
  .filter((m) => m.max_cores !== undefined || m.max_gpus !== undefined);
const managedArb: fc.Arbitrary<ManagedChange> = fc.record({ show: idArb, managed: fc.boolean() });

describe('round trips (property)', () => {
  it('release: parse(encode(m)) == m, with or without layer/dept', () => {
    fc.assert(
      fc.property(
        releaseArb,
        fc.option(idArb, { nil: undefined }),
        fc.option(idArb, { nil: undefined }),
        (m, layer, dept) => {
          const payload = encodeRelease({ ...m, layer, dept });
          expect(parseRelease(payload)).toEqual({ ok: true, value: m });
        },
      ),
    );
  });

  it('limit change: parse(encode(c)) == [c]', () => {
    fc.assert(
      fc.property(limitChangeArb, (c) => {
        expect(parseLimitChange(encodeLimitChange(c))).toEqual({ ok: true, value: [c] });
      }),
    );
  });

  it('folder/job wire form: parse(encode(m)) is its fields in order, max_cores first', () => {
    fc.assert(
      fc.property(vertexMessageArb, (m) => {
        const expected: LimitChange[] = [];
        if (m.max_cores !== undefined)
          expected.push({ vertex: m.vertex, id: m.id, field: 'max_cores', value: m.max_cores });
        if (m.max_gpus !== undefined)
          expected.push({ vertex: m.vertex, id: m.id, field: 'max_gpus', value: m.max_gpus });
        expect(parseLimitChange(encodeLimitChange(m))).toEqual({ ok: true, value: expected });
      }),
    );
  });

  it('managed change: parse(encode(m)) == m', () => {
    fc.assert(
      fc.property(managedArb, (m) => {
        expect(parseManagedChange(encodeManagedChange(m))).toEqual({ ok: true, value: m });
      }),
    );
  });

  it('unknown extra fields never change the parsed value', () => {
    const extraArb = fc.dictionary(
      fc
        .string()
        .filter((k) => !['show', 'alloc', 'folder', 'job', 'cores', 'gpus', '__proto__'].includes(k)),
      fc.jsonValue(),
    );
    fc.assert(
      fc.property(releaseArb, extraArb, (m, extra) => {
        const payload = j({ ...extra, ...m });
        fc.pre(utf8ByteLength(payload) <= MAX_PAYLOAD_BYTES);
        expect(parseRelease(payload)).toEqual({ ok: true, value: m });
      }),
    );
  });

  it('parsers never throw, whatever arrives', () => {
    const payloadArb = fc.oneof(
      fc.string({ unit: 'binary' }),
      fc.jsonValue().map((v) => j(v)),
      fc
        .record({ vertex: fc.constantFrom('sub', 'folder', 'job', 'layer'), id: fc.jsonValue() })
        .map((v) => j(v)),
      fc
        .tuple(releaseArb, fc.constantFrom('show', 'cores', 'gpus'), fc.jsonValue())
        .map(([m, k, v]) => j({ ...m, [k]: v })),
    );
    fc.assert(
      fc.property(payloadArb, (p) => {
        for (const parse of Object.values(parsers)) {
          const r = parse(p);
          if (!r.ok) {
            expect(['too_long', 'not_json', 'invalid']).toContain(r.reason);
            expect(r.error).not.toMatch(/\n/);
          }
        }
      }),
    );
  });
});
