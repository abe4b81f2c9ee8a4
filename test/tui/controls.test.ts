import { describe, expect, it } from 'vitest';

import {
  initialControlState,
  queryChanged,
  reduceInput,
  reduceKey,
  type ControlState,
} from '../../src/tui/controls.js';

function press(
  state: ControlState,
  ...keys: (string | [string, Parameters<typeof reduceKey>[2]])[]
): ControlState {
  return keys.reduce<ControlState>(
    (s, k) => (typeof k === 'string' ? reduceKey(s, k, {}) : reduceKey(s, k[0], k[1])),
    state,
  );
}

describe('controls', () => {
  const start = initialControlState();

  it('starts on subscriptions by utilization, unfiltered', () => {
    expect(start).toEqual({
      vertex: 'subscription',
      sort: 'utilization',
      filter: '',
      typing: null,
      paused: false,
      quit: false,
      selected: 0,
      detail: null,
    });
    expect(initialControlState({ vertex: 'job', sort: 'name', filter: ' a ' })).toMatchObject({
      vertex: 'job',
      sort: 'name',
      filter: 'a',
    });
  });

  it('s/f/j switch the vertex kind; u/n the sort', () => {
    expect(press(start, 'f').vertex).toBe('folder');
    expect(press(start, 'j').vertex).toBe('job');
    expect(press(start, 'j', 's').vertex).toBe('subscription');
    expect(press(start, 'n').sort).toBe('name');
    expect(press(start, 'n', 'u').sort).toBe('utilization');
  });

  it('returns the same object for keys that change nothing', () => {
    expect(reduceKey(start, 's')).toBe(start);
    expect(reduceKey(start, 'u')).toBe(start);
    expect(reduceKey(start, 'x')).toBe(start);
    expect(reduceKey(start, '', { escape: true })).toBe(start);
    expect(reduceKey(start, 'f', { ctrl: true })).toBe(start);
  });

  it('/ types a filter; Enter applies it (trimmed); keys are text while typing', () => {
    let s = press(start, '/');
    expect(s.typing).toBe('');
    s = press(s, 'f', 'q', 'p', ' ');
    expect(s).toMatchObject({ typing: 'fqp ', vertex: 'subscription', paused: false, quit: false });
    s = press(s, ['', { return: true }]);
    expect(s).toMatchObject({ typing: null, filter: 'fqp' });
  });

  it('backspace/delete edit, control characters and arrows are ignored, paste appends', () => {
    let s = press(start, '/', 'abc', ['', { backspace: true }]);
    expect(s.typing).toBe('ab');
    s = press(s, ['', { delete: true }], ['', { upArrow: true }], '\u0007x\ty');
    expect(s.typing).toBe('axy');
    expect(press(start, '/', ['', { backspace: true }]).typing).toBe('');
  });

  it('Esc while typing clears the filter; Esc otherwise clears an applied filter', () => {
    const filtered = press(start, '/', 'bravo', ['', { return: true }]);
    expect(filtered.filter).toBe('bravo');
    expect(press(filtered, '/', 'x', ['', { escape: true }])).toMatchObject({ filter: '', typing: null });
    expect(press(filtered, ['', { escape: true }]).filter).toBe('');
  });

  it('p toggles pause; q and Ctrl-C quit (Ctrl-C even while typing)', () => {
    expect(press(start, 'p').paused).toBe(true);
    expect(press(start, 'p', 'p').paused).toBe(false);
    expect(press(start, 'q').quit).toBe(true);
    expect(press(start, ['c', { ctrl: true }]).quit).toBe(true);
    expect(press(start, '/', ['c', { ctrl: true }]).quit).toBe(true);
    expect(press(start, '/', 'q').quit).toBe(false);
  });

  it('queryChanged: vertex, sort or applied filter', () => {
    expect(queryChanged(start, press(start, 'f'))).toBe(true);
    expect(queryChanged(start, press(start, 'n'))).toBe(true);
    expect(queryChanged(start, press(start, '/', 'a', ['', { return: true }]))).toBe(true);
    expect(queryChanged(start, press(start, '/', 'a'))).toBe(false);
    expect(queryChanged(start, press(start, 'p'))).toBe(false);
  });

  it('reduceInput: a multi-character event is a sequence of key presses', () => {
    expect(reduceInput(start, '/bra\r')).toMatchObject({ filter: 'bra', typing: null });
    expect(reduceInput(start, '/brx\u007fa\n')).toMatchObject({ filter: 'bra', typing: null });
    expect(reduceInput(start, 'fn')).toMatchObject({ vertex: 'folder', sort: 'name' });
    expect(reduceInput(start, 'pp').paused).toBe(false);
    // While typing, a paste is text (even letters that are commands otherwise).
    expect(reduceInput(reduceKey(start, '/'), 'fjq').typing).toBe('fjq');
    // Single keys and special keys go straight to reduceKey.
    expect(reduceInput(start, 'j')).toEqual(reduceKey(start, 'j'));
    expect(reduceInput(start, 'c', { ctrl: true }).quit).toBe(true);
  });
});
