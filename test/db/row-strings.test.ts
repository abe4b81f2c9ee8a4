/**
 * The interner's bookkeeping. That it hands back the *kept instance* is not observable from
 * JavaScript (strings compare by value); its effect is the GC pause row of `npm run bench`.
 */
import { describe, expect, it } from 'vitest';
import { StringInterner, compactInteger } from '../../src/db/row-strings.js';

describe('StringInterner', () => {
  it('answers an equal text, holds each text once, and forgets one a read after it was last seen', () => {
    const texts = new StringInterner();
    expect(texts.intern('job-1')).toBe('job-1');
    texts.intern('job-1');
    texts.intern('job-2');
    expect(texts.size).toBe(2);
    texts.endRead();
    // The next read sees job-1 again, not job-2: job-2 goes once that read ends too.
    expect(texts.intern('job-1')).toBe('job-1');
    expect(texts.size).toBe(2);
    texts.endRead();
    expect(texts.size).toBe(1);
    texts.endRead();
    expect(texts.size).toBe(0);
  });
});

describe('compactInteger', () => {
  it('turns exact integer text into a number and leaves anything else as it came', () => {
    expect(compactInteger('1234')).toBe(1234);
    expect(compactInteger('-5')).toBe(-5);
    expect(compactInteger(7)).toBe(7);
    expect(compactInteger(7n)).toBe(7n);
    expect(compactInteger('9007199254740993')).toBe('9007199254740993');
    expect(compactInteger('0012')).toBe('0012');
    expect(compactInteger('1.5')).toBe('1.5');
  });
});
