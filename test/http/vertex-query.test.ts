import { describe, expect, it } from 'vitest';
import { parseVertexQuery } from '../../src/http/vertex-query.js';

describe('GET /v1/vertex query', () => {
  it('takes a kind and a key, each once; anything else is one clear message', () => {
    expect(parseVertexQuery(new URLSearchParams('kind=job&key=j-1'))).toEqual({
      ok: true,
      value: { kind: 'job', key: 'j-1' },
    });
    expect(parseVertexQuery(new URLSearchParams('kind=subscription&key=s%2Fa'))).toMatchObject({
      value: { key: 's/a' },
    });
    expect(parseVertexQuery(new URLSearchParams('kind=pool&key=x'))).toEqual({
      ok: false,
      message: 'kind: expected one of subscription, folder, job',
    });
    expect(parseVertexQuery(new URLSearchParams('kind=job'))).toMatchObject({ ok: false, message: /^key: / });
    expect(parseVertexQuery(new URLSearchParams('kind=job&key=a&key=b'))).toEqual({
      ok: false,
      message: 'key: given more than once',
    });
    expect(parseVertexQuery(new URLSearchParams('kind=job&key=a&top=1'))).toEqual({
      ok: false,
      message: 'top: unexpected query parameter',
    });
  });
});
