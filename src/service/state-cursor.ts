/**
 * The opaque cursor of a paged `GET /v1/state`: where the next page starts in the store's
 * own order (vertex kinds in `VERTEX_KINDS` order, each kind in insertion order). The store
 * never removes a vertex, so a position stays valid between pages; a vertex created since
 * is found at the end of its kind.
 *
 * On the wire it is base64url text; clients pass it back unchanged and never parse it.
 */
import { VERTEX_KINDS } from '../core/types.js';

export interface StateCursor {
  /** Index into `VERTEX_KINDS`. */
  kind: number;
  /** Vertices of that kind already listed (matching or not). */
  position: number;
}

export function encodeCursor(cursor: StateCursor): string {
  return Buffer.from(`v1.${cursor.kind}.${cursor.position}`, 'utf8').toString('base64url');
}

/** The cursor, or undefined when the text is not one {@link encodeCursor} made. */
export function decodeCursor(text: string): StateCursor | undefined {
  if (text.length === 0 || text.length > 64 || !/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  const match = /^v1\.([0-9])\.(0|[1-9][0-9]{0,14})$/.exec(Buffer.from(text, 'base64url').toString('utf8'));
  if (match === null) return undefined;
  const kind = Number(match[1]);
  const position = Number(match[2]);
  if (kind >= VERTEX_KINDS.length || !Number.isSafeInteger(position)) return undefined;
  return { kind, position };
}
