/**
 * Keyboard handling of the live `inspect` view as a pure reducer (no Ink): what a key press
 * does to the view state. The Ink app feeds it Ink's `(input, key)` pairs.
 *
 * Keys: `s`/`f`/`j` vertex kind, `u`/`n`/`b` sort (utilization, name, blocked), `/` type a
 * show filter (Enter applies, Esc clears, Backspace edits), Esc clears an applied filter,
 * ↑/↓ select a row, Enter opens its detail pane (Enter or Esc closes it), `p` pause/resume,
 * `q` or Ctrl-C quit.
 */
import type { SortOrder, VertexKind } from './view-model.js';

export interface ControlState {
  vertex: VertexKind;
  sort: SortOrder;
  /** The applied show filter ('' = none). */
  filter: string;
  /** The filter being typed after `/`, or `null` when not typing. */
  typing: string | null;
  paused: boolean;
  quit: boolean;
  /** Index of the selected row among the visible rows. */
  selected: number;
  /** Key of the row whose detail pane is open (of kind `vertex`), or null. */
  detail: string | null;
}

/** The subset of Ink's `Key` the reducer looks at. */
export interface KeyPress {
  return?: boolean;
  escape?: boolean;
  backspace?: boolean;
  delete?: boolean;
  ctrl?: boolean;
  meta?: boolean;
  tab?: boolean;
  upArrow?: boolean;
  downArrow?: boolean;
  leftArrow?: boolean;
  rightArrow?: boolean;
}

export function initialControlState(
  init: { vertex?: VertexKind; sort?: SortOrder; filter?: string } = {},
): ControlState {
  return {
    vertex: init.vertex ?? 'subscription',
    sort: init.sort ?? 'utilization',
    filter: (init.filter ?? '').trim(),
    typing: null,
    paused: false,
    quit: false,
    selected: 0,
    detail: null,
  };
}

const VERTEX_KEYS: Record<string, VertexKind> = { s: 'subscription', f: 'folder', j: 'job' };
const SORT_KEYS: Record<string, SortOrder> = { u: 'utilization', n: 'name', b: 'blocked' };

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/g;

/**
 * The next state for one key press; the same object when the key changes nothing. `rows`: the
 * keys of the visible rows, in order (for the selection and Enter).
 */
export function reduceKey(
  state: ControlState,
  input: string,
  key: KeyPress = {},
  rows: readonly string[] = [],
): ControlState {
  if (key.ctrl && input === 'c') return { ...state, quit: true };

  if (state.detail !== null && state.typing === null) {
    if (key.escape || key.return) return { ...state, detail: null };
    if (input === 'q') return { ...state, quit: true };
    if (input === 'p') return { ...state, paused: !state.paused };
    return state;
  }

  if (state.typing !== null) {
    if (key.return) return { ...state, filter: state.typing.trim(), typing: null, selected: 0 };
    if (key.escape) return { ...state, filter: '', typing: null };
    if (key.backspace || key.delete) {
      return { ...state, typing: Array.from(state.typing).slice(0, -1).join('') };
    }
    if (key.ctrl || key.meta || key.tab || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow) {
      return state;
    }
    const text = input.replace(CONTROL_CHARS, '');
    return text === '' ? state : { ...state, typing: state.typing + text };
  }

  if (key.escape) return state.filter === '' ? state : { ...state, filter: '', selected: 0 };
  if (key.ctrl || key.meta) return state;
  const last = Math.max(0, rows.length - 1);
  const current = Math.min(state.selected, last);
  if (key.upArrow) return current === 0 ? state : { ...state, selected: current - 1 };
  if (key.downArrow) return current >= last ? state : { ...state, selected: current + 1 };
  if (key.return) {
    const target = rows[current];
    return target === undefined ? state : { ...state, selected: current, detail: target };
  }
  const vertex = VERTEX_KEYS[input];
  if (vertex !== undefined) return vertex === state.vertex ? state : { ...state, vertex, selected: 0 };
  const sort = SORT_KEYS[input];
  if (sort !== undefined) return sort === state.sort ? state : { ...state, sort, selected: 0 };
  switch (input) {
    case '/':
      return { ...state, typing: '' };
    case 'p':
      return { ...state, paused: !state.paused };
    case 'q':
      return { ...state, quit: true };
    default:
      return state;
  }
}

/**
 * Like {@link reduceKey} for one input event that may carry several characters (a paste, or
 * keys typed faster than the terminal is read): each character is one key press, `\r`/`\n`
 * is Enter and DEL/BS are Backspace.
 */
export function reduceInput(
  state: ControlState,
  input: string,
  key: KeyPress = {},
  rows: readonly string[] = [],
): ControlState {
  const chars = Array.from(input);
  const special =
    key.return ||
    key.escape ||
    key.backspace ||
    key.delete ||
    key.ctrl ||
    key.meta ||
    key.tab ||
    key.upArrow ||
    key.downArrow ||
    key.leftArrow ||
    key.rightArrow;
  if (special || chars.length <= 1) return reduceKey(state, input, key, rows);
  let s = state;
  for (const ch of chars) {
    if (ch === '\r' || ch === '\n') s = reduceKey(s, '', { return: true }, rows);
    else if (ch === '\u007f' || ch === '\b') s = reduceKey(s, '', { backspace: true }, rows);
    else s = reduceKey(s, ch, {}, rows);
  }
  return s;
}

/** Whether the data the view asks the daemon for changed (so a fetch should happen now). */
export function queryChanged(a: ControlState, b: ControlState): boolean {
  return a.vertex !== b.vertex || a.sort !== b.sort || a.filter !== b.filter || a.detail !== b.detail;
}
