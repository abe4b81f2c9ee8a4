/**
 * KeyResolver: one read per key at a time (single flight), one read for all new keys of a
 * call, and short-lived verdicts. The reader here is a controllable function (the resolver
 * does no I/O itself); the read against PostgreSQL is tested through the daemon in
 * test/daemon/lifecycle.test.ts.
 */
import { describe, expect, it } from 'vitest';
import type { UnknownKeys } from '../../src/db/queries.js';
import { KeyResolver, folderKey, jobKey, subscriptionKey } from '../../src/service/key-resolver.js';

function controlledReader() {
  const reads: { keys: UnknownKeys; finish: (found: string[]) => void; fail: () => void }[] = [];
  const read = (keys: UnknownKeys) =>
    new Promise<ReadonlySet<string>>((resolve, reject) => {
      reads.push({ keys, finish: (found) => resolve(new Set(found)), fail: () => reject(new Error('down')) });
    });
  return { reads, read };
}

const keys = (
  jobs: string[],
  folders: string[] = [],
  subscriptions: { show: string; alloc: string }[] = [],
) => ({
  jobs,
  folders,
  subscriptions,
});

describe('KeyResolver', () => {
  it('reads all new keys of a call at once, and joins a key already being read', async () => {
    const { reads, read } = controlledReader();
    const resolver = new KeyResolver(read, 1_000);
    const first = resolver.resolve(keys(['j1', 'j1'], ['f1'], [{ show: 's', alloc: 'a' }]));
    const second = resolver.resolve(keys(['j1', 'j2']));
    expect(reads).toHaveLength(2);
    expect(reads[0]!.keys).toEqual(keys(['j1'], ['f1'], [{ show: 's', alloc: 'a' }]));
    expect(reads[1]!.keys).toEqual(keys(['j2']));
    expect(resolver.pending(jobKey('j1'))).toBe(true);

    let secondDone = false;
    void second.then(() => (secondDone = true));
    reads[0]!.finish([jobKey('j1'), subscriptionKey('s', 'a')]);
    await first;
    // The second call also waits for j2's read.
    expect(secondDone).toBe(false);
    reads[1]!.finish([]);
    await second;
    expect(resolver.verdict(jobKey('j1'))).toBe(true);
    expect(resolver.verdict(folderKey('f1'))).toBe(false);
    expect(resolver.verdict(jobKey('j2'))).toBe(false);
    expect(resolver.pending(jobKey('j1'))).toBe(false);
  });

  it('forgets a verdict after its time, and leaves none when the read fails', async () => {
    const { reads, read } = controlledReader();
    let now = 0;
    const resolver = new KeyResolver(read, 1_000, () => now);
    const done = resolver.resolve(keys(['j1']));
    reads[0]!.finish([]);
    await done;
    now = 999;
    expect(resolver.verdict(jobKey('j1'))).toBe(false);
    now = 1_001;
    expect(resolver.verdict(jobKey('j1'))).toBeUndefined();

    const failed = resolver.resolve(keys(['j2']));
    reads[1]!.fail();
    await failed;
    expect(resolver.verdict(jobKey('j2'))).toBeUndefined();
    expect(resolver.pending(jobKey('j2'))).toBe(false);
  });
});
