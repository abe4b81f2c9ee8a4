/** The query of `GET /v1/vertex`: `kind` and `key`, each exactly once. */
import { VERTEX_KINDS, type VertexKind } from '../core/types.js';
import { MAX_ID_LENGTH } from './schemas.js';

export type VertexQueryResult =
  { ok: true; value: { kind: VertexKind; key: string } } | { ok: false; message: string };

export function parseVertexQuery(params: URLSearchParams): VertexQueryResult {
  const seen = new Map<string, string>();
  for (const [name, value] of params) {
    if (name !== 'kind' && name !== 'key')
      return { ok: false, message: `${name}: unexpected query parameter` };
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
