/** The sampled refusal rates and history kept outside the clock-free core. */
import { describe, expect, it } from 'vitest';
import { Store } from '../../src/core/store.js';
import type { VertexView } from '../../src/core/vertex.js';
import { HISTORY_WINDOW_MS, RefusalHistory } from '../../src/service/refusal-history.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

function farm(burst = 10) {
  const store = new Store();
  store.setCaps({
    subscriptions: [{ show: 's', alloc: 'a', burst }],
    folders: [{ id: 'f', show: 's', maxCores: -1, maxGpus: -1 }],
    jobs: [{ id: 'j', show: 's', maxCores: 4, maxGpus: -1 }],
  });
  const all = (): VertexView[] => [
    ...store.vertices('subscription'),
    ...store.vertices('folder'),
    ...store.vertices('job'),
  ];
  const refuse = (n: number) => {
    for (let i = 0; i < n; i++)
      store.book({ show: 's', alloc: 'a', folder: 'f', job: 'j', cores: 5, gpus: 0 });
  };
  return { store, all, refuse, job: () => store.job('j')! };
}

describe('RefusalHistory', () => {
  it('tracks nothing while no vertex refuses or nears its cap', () => {
    const { all } = farm();
    const history = new RefusalHistory(5_000);
    for (let t = 0; t < 10; t++) history.sample(all(), T0 + t * 5_000);
    expect(history.size).toBe(0);
  });

  it('rates over 1 and 5 minutes start from the last tick before the first refusal, not from zero time', () => {
    const { all, refuse, job } = farm();
    const history = new RefusalHistory(5_000);
    history.sample(all(), T0);
    refuse(30); // between T0 and T0+5s
    history.sample(all(), T0 + 5_000);
    const rates = history.rates(job(), T0 + 5_000);
    // 30 refusals over the 5 s since the previous tick (the baseline), not "30 at once".
    expect(rates.perSecond1m).toBeCloseTo(6, 5);
    expect(rates.perSecond5m).toBeCloseTo(6, 5);
    expect(rates.lastAt).toBe(T0 + 5_000);
    // Two minutes of silence: the 1-minute rate falls to 0, the 5-minute one still counts them.
    for (let t = 2; t <= 26; t++) history.sample(all(), T0 + t * 5_000);
    const later = history.rates(job(), T0 + 130_000);
    expect(later.perSecond1m).toBe(0);
    expect(later.perSecond5m).toBeCloseTo(30 / 130, 5);
    expect(later.lastAt).toBe(T0 + 5_000);
  });

  it('rates a vertex that starts refusing between two ticks at once, before a tick tracks it', () => {
    const { all, refuse, job } = farm();
    const history = new RefusalHistory(5_000);
    history.sample(all(), T0);
    history.sample(all(), T0 + 30_000);
    refuse(12);
    // Counted from the first tick (the count was 0 since then): 12 over 40 s.
    expect(history.rates(job(), T0 + 40_000)).toEqual({
      perSecond1m: 12 / 40,
      perSecond5m: 12 / 40,
      lastAt: T0 + 40_000,
    });
    // Over a minute later the 1-minute window no longer reaches back to the first tick.
    expect(history.rates(job(), T0 + 120_000).perSecond1m).toBeCloseTo(12 / 60, 5);
  });

  it('counts refusals since the last tick at read time (the live counter is the newest point)', () => {
    const { all, refuse, job } = farm();
    const history = new RefusalHistory(5_000);
    history.sample(all(), T0);
    refuse(1);
    history.sample(all(), T0 + 5_000);
    refuse(10);
    const rates = history.rates(job(), T0 + 7_000);
    expect(rates.perSecond1m).toBeCloseTo(11 / 7, 5);
    expect(rates.lastAt).toBe(T0 + 7_000);
  });

  it('keeps a near-cap vertex without refusals, drops a quiet one after a window, and measures a return from its old count', () => {
    const { store, all, job } = farm(10);
    const history = new RefusalHistory(10_000);
    store.book({ show: 's', alloc: 'a', folder: 'f', job: 'j', cores: 4, gpus: 0 }); // job 4/4: near cap
    history.sample(all(), T0);
    expect(history.history(job()).length).toBe(1);
    expect(history.history(job())[0]!.utilization).toBe(1);
    // The subscription (4/10) is neither near its cap nor refusing: not tracked.
    expect(history.history(store.subscription('s', 'a')!)).toEqual([]);

    const quiet = new RefusalHistory(10_000);
    const f2 = farm(10);
    quiet.sample(f2.all(), T0);
    f2.refuse(5);
    let t = T0;
    for (let i = 1; t - T0 <= HISTORY_WINDOW_MS + 10_000; i++) quiet.sample(f2.all(), (t = T0 + i * 10_000));
    expect(quiet.size).toBe(0);
    expect(quiet.rates(f2.job(), t).perSecond1m).toBe(0);
    // It refuses again: the rate counts only the new refusals, from the previous tick.
    f2.refuse(2);
    quiet.sample(f2.all(), t + 10_000);
    expect(quiet.rates(f2.job(), t + 10_000).perSecond1m).toBeCloseTo(0.2, 5);
  });

  it('keeps at most ten minutes of samples per vertex', () => {
    const { all, refuse, job } = farm();
    const history = new RefusalHistory(5_000);
    for (let i = 0; i < 500; i++) {
      refuse(1);
      history.sample(all(), T0 + i * 5_000);
    }
    const samples = history.history(job());
    expect(samples.length).toBeLessThanOrEqual(HISTORY_WINDOW_MS / 5_000 + 1);
    expect(samples.at(-1)!.at - samples[0]!.at).toBeLessThanOrEqual(HISTORY_WINDOW_MS);
  });
});
