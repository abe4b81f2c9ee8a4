import { describe, expect, it } from 'vitest';
import { SingleFlightLoop } from '../../src/service/single-flight-loop.js';

/** A pass that runs until the test releases it, recording starts, ends and overlap. */
function controlledPass() {
  const log: string[] = [];
  let running = 0;
  let overlapped = false;
  const releases: (() => void)[] = [];
  const pass = async () => {
    running++;
    if (running > 1) overlapped = true;
    const n = log.filter((e) => e.startsWith('start')).length + 1;
    log.push(`start ${n}`);
    await new Promise<void>((resolve) => releases.push(resolve));
    log.push(`end ${n}`);
    running--;
  };
  return { pass, log, releases, overlapped: () => overlapped };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !condition(); i++) await Promise.resolve();
  expect(condition()).toBe(true);
}

describe('SingleFlightLoop', () => {
  it('never overlaps passes; a request during a pass waits for the next one, shared by every waiting caller', async () => {
    const p = controlledPass();
    const loop = new SingleFlightLoop(p.pass, 3_600_000);
    const first = loop.runNow();
    await until(() => p.log.length === 1);
    let secondDone = false;
    const second = loop.runNow().then(() => (secondDone = true));
    const third = loop.runNow();
    p.releases[0]!();
    await first;
    await until(() => p.log.includes('start 2'));
    expect(secondDone).toBe(false); // the pass that began before the request does not satisfy it
    p.releases[1]!();
    await Promise.all([second, third]);
    expect(p.log).toEqual(['start 1', 'end 1', 'start 2', 'end 2']);
    expect(p.overlapped()).toBe(false);
  });

  it('a failed pass does not block the next request', async () => {
    let calls = 0;
    const loop = new SingleFlightLoop(async () => {
      calls++;
      if (calls === 1) throw new Error('database down');
    }, 3_600_000);
    await expect(loop.runNow()).rejects.toThrow('database down');
    await loop.runNow();
    expect(calls).toBe(2);
  });
});
