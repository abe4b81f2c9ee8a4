/**
 * The opaque cursor of a paged `GET /v1/state`: where the next page starts in the store's
 * own order (vertex kinds in `VERTEX_KINDS` order, each kind in insertion order). A vertex
 * created since is found at the end of its kind. The recompute forgets idle vertices, which
 * shifts later positions left: the cursor carries the store's removal count, and the next
 * page starts that many positions earlier, so a page may repeat a few rows but never skips one
 * (clients drop repeats by key).
 *
 * On the wire it is base64url text; clients pass it back unchanged and never parse it.
 */
import { VERTEX_KINDS } from '../core/types.js';

export interface StateCursor {
  /** Index into `VERTEX_KINDS`. */
  kind: number;
  /** Vertices of that kind already listed (matching or not). */
  position: number;
  /** `Store.removals` when the page's walk began. */
  removals: number;
}

export function encodeCursor(cursor: StateCursor): string {
  return Buffer.from(`v2.${cursor.kind}.${cursor.position}.${cursor.removals}`, 'utf8').toString('base64url');
}

/** The cursor, or undefined when the text is not one {@link encodeCursor} made. */
export function decodeCursor(text: string): StateCursor | undefined {
  if (text.length === 0 || text.length > 64 || !/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  const match = /^v2\.([0-9])\.(0|[1-9][0-9]{0,14})\.(0|[1-9][0-9]{0,14})$/.exec(
    Buffer.from(text, 'base64url').toString('utf8'),
  );
  if (match === null) return undefined;
  const kind = Number(match[1]);
  const position = Number(match[2]);
  const removals = Number(match[3]);
  if (kind >= VERTEX_KINDS.length || !Number.isSafeInteger(position) || !Number.isSafeInteger(removals))
    return undefined;
  return { kind, position, removals };
}
