/**
 * The query of `GET /v1/vertex`: `kind` and `key`, each exactly once. A message never repeats
 * what the client sent (see src/http/schemas.ts): not a value, and not the name of an unexpected
 * parameter either (a pasted token must not come back), only the names that are allowed.
 */
import { VERTEX_KINDS, type VertexKind } from '../core/types.js';
import { MAX_ID_LENGTH } from './schemas.js';

const PARAMS = ['kind', 'key'] as const;

export type VertexQueryResult =
  { ok: true; value: { kind: VertexKind; key: string } } | { ok: false; message: string };

export function parseVertexQuery(params: URLSearchParams): VertexQueryResult {
  const seen = new Map<string, string>();
  for (const [name, value] of params) {
    if (!(PARAMS as readonly string[]).includes(name))
      return { ok: false, message: `query: an unexpected parameter (allowed: ${PARAMS.join(', ')})` };
    // `name` is one of PARAMS here: naming it repeats nothing the client chose.
    if (seen.has(name)) return { ok: false, message: `${name}: given more than once` };
    seen.set(name, value);
  }
  const kind = seen.get('kind');
  const key = seen.get('key');
  if (kind === undefined || !(VERTEX_KINDS as readonly string[]).includes(kind)) {
    return { ok: false, message: `kind: expected one of ${VERTEX_KINDS.join(', ')}` };
  }
  // A subscription key is show/alloc: twice an id and a slash.
  if (key === undefined || key === '' || key.length > 2 * MAX_ID_LENGTH + 1) {
    return { ok: false, message: 'key: expected the vertex key that GET /v1/state lists' };
  }
  return { ok: true, value: { kind: kind as VertexKind, key } };
}
