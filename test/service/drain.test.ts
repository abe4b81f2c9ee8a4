import { describe, expect, it } from 'vitest';

import { ShowDrains } from '../../src/service/drain.js';

describe('ShowDrains (phase one of a flip to Cuebot)', () => {
  it('counts in-flight bookings per show and drains at once when none is in flight', async () => {
    const drains = new ShowDrains();
    drains.booked('a');
    drains.booked('a');
    drains.booked('b');
    expect([drains.inflightOf('a'), drains.inflightOf('b'), drains.inflightOf('c')]).toEqual([2, 1, 0]);
    await expect(drains.drain('c', 'flipping to cuebot', 10_000)).resolves.toMatchObject({ drained: true });
    expect(drains.reasonFor('c')).toBe('flipping to cuebot');
    expect(drains.reasonFor('a')).toBeUndefined();
  });

  it('waits until the last booking of the show ends; other shows do not wake it', async () => {
    const drains = new ShowDrains();
    drains.booked('a');
    drains.booked('a');
    drains.booked('b');
    let done = false;
    const draining = drains.drain('a', 'flipping to cuebot', 60_000).then((outcome) => {
      done = true;
      return outcome;
    });
    expect(drains.reasonFor('a')).toBe('flipping to cuebot');
    drains.settled('a');
    drains.settled('b');
    await Promise.resolve();
    expect(done).toBe(false);
    drains.settled('a');
    await expect(draining).resolves.toMatchObject({ drained: true });
    // A completed drain holds until lifted.
    expect(drains.list()).toEqual([{ id: 'a', reason: 'flipping to cuebot' }]);
    expect(drains.lift('a')).toBe(true);
    expect(drains.lift('a')).toBe(false);
    expect(drains.reasonFor('a')).toBeUndefined();
  });

  it('on timeout answers the in-flight count and lifts the drain', async () => {
    const drains = new ShowDrains();
    drains.booked('a');
    await expect(drains.drain('a', 'flipping to cuebot', 20)).resolves.toEqual({
      drained: false,
      inflight: 1,
    });
    expect(drains.reasonFor('a')).toBeUndefined();
    expect(drains.list()).toEqual([]);
  });
});
