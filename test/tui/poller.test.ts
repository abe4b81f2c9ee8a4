import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { Poller } from '../../src/tui/poller.js';

/** A fetch whose answers the test releases one by one. */
function deferredFetch() {
  const pending: { resolve: (v: number) => void; reject: (e: unknown) => void }[] = [];
  let n = 0;
  const fetch = vi.fn(
    () =>
      new Promise<number>((resolve, reject) => {
        pending.push({ resolve, reject });
      }),
  );
  return {
    fetch,
    pending,
    resolveNext: () => pending.shift()?.resolve(++n),
    rejectNext: (e: unknown) => pending.shift()?.reject(e),
  };
}

describe('Poller (fake timers)', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function make(fetch: () => Promise<number>, intervalMs = 1000) {
    const results: number[] = [];
    const errors: unknown[] = [];
    const poller = new Poller<number>({
      fetch,
      intervalMs,
      onResult: (v) => results.push(v),
      onError: (e) => errors.push(e),
      clock: () => Date.now(),
    });
    return { poller, results, errors };
  }

  it('fetches at once, then every interval, start to start', async () => {
    let n = 0;
    const fetch = vi.fn(async () => ++n);
    const { poller, results } = make(fetch);
    poller.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(results).toEqual([1]);
    await vi.advanceTimersByTimeAsync(999);
    expect(fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(fetch).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(3000);
    expect(fetch).toHaveBeenCalledTimes(5);
    expect(poller.fetchCount).toBe(5);
    await poller.stop();
  });

  it('never overlaps fetches; a slow fetch delays the next by the minimum gap only', async () => {
    const d = deferredFetch();
    const { poller, results } = make(d.fetch);
    poller.start();
    await vi.advanceTimersByTimeAsync(5000);
    expect(d.fetch).toHaveBeenCalledTimes(1); // still in flight
    d.resolveNext();
    await vi.advanceTimersByTimeAsync(0);
    expect(results).toEqual([1]);
    await vi.advanceTimersByTimeAsync(99);
    expect(d.fetch).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(d.fetch).toHaveBeenCalledTimes(2);
    void poller.stop();
    d.resolveNext();
  });

  it('errors are reported and retried at the same pace; it recovers', async () => {
    let up = false;
    const fetch = vi.fn(async () => {
      if (!up) throw new Error('ECONNREFUSED');
      return 7;
    });
    const { poller, results, errors } = make(fetch, 500);
    poller.start();
    await vi.advanceTimersByTimeAsync(1000);
    expect(errors).toHaveLength(3);
    up = true;
    await vi.advanceTimersByTimeAsync(500);
    expect(results).toEqual([7]);
    await poller.stop();
  });

  it('paused: no fetch starts; resuming fetches at once', async () => {
    const fetch = vi.fn(async () => 1);
    const { poller } = make(fetch);
    poller.start();
    await vi.advanceTimersByTimeAsync(0);
    poller.setPaused(true);
    expect(poller.paused).toBe(true);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(fetch).toHaveBeenCalledTimes(1);
    poller.setPaused(false);
    await vi.advanceTimersByTimeAsync(0);
    expect(fetch).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(fetch).toHaveBeenCalledTimes(3);
    await poller.stop();
  });

  it('paused before start: nothing until resumed', async () => {
    const fetch = vi.fn(async () => 1);
    const { poller } = make(fetch);
    poller.setPaused(true);
    poller.start();
    await vi.advanceTimersByTimeAsync(5000);
    expect(fetch).not.toHaveBeenCalled();
    poller.setPaused(false);
    await vi.advanceTimersByTimeAsync(0);
    expect(fetch).toHaveBeenCalledTimes(1);
    await poller.stop();
  });

  it('refreshNow fetches at once when idle, and right after an in-flight fetch otherwise', async () => {
    const d = deferredFetch();
    const { poller } = make(d.fetch);
    poller.start();
    await vi.advanceTimersByTimeAsync(0);
    poller.refreshNow(); // in flight: queued
    expect(d.fetch).toHaveBeenCalledTimes(1);
    d.resolveNext();
    await vi.advanceTimersByTimeAsync(0);
    expect(d.fetch).toHaveBeenCalledTimes(2);
    d.resolveNext();
    await vi.advanceTimersByTimeAsync(10);
    expect(d.fetch).toHaveBeenCalledTimes(2); // idle, waiting for the interval
    poller.refreshNow();
    await vi.advanceTimersByTimeAsync(0);
    expect(d.fetch).toHaveBeenCalledTimes(3);
    void poller.stop();
    d.resolveNext();
  });

  it('stop: no further fetch, the in-flight result is dropped, stop resolves', async () => {
    const d = deferredFetch();
    const { poller, results } = make(d.fetch);
    poller.start();
    await vi.advanceTimersByTimeAsync(0);
    const stopped = poller.stop();
    expect(poller.running).toBe(false);
    d.resolveNext();
    await stopped;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(d.fetch).toHaveBeenCalledTimes(1);
    expect(results).toEqual([]);
  });

  it('a throwing callback does not end the loop', async () => {
    const fetch = vi.fn(async () => 1);
    const poller = new Poller<number>({
      fetch,
      intervalMs: 100,
      onResult: () => {
        throw new Error('render bug');
      },
      onError: () => {},
      clock: () => Date.now(),
    });
    poller.start();
    await vi.advanceTimersByTimeAsync(250);
    expect(fetch).toHaveBeenCalledTimes(3);
    await poller.stop();
  });

  it('rejects a non-positive interval', () => {
    expect(() => make(async () => 1, 0)).toThrow(RangeError);
  });
});
