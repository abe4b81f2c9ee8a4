/**
 * Resolution of booking keys the store holds no caps for (issue 11 item 2): a job, folder or
 * subscription created after the last cap read, or a job that may have moved folder. One read
 * for all keys of a request or batch, single flight per key (a key already being read is
 * joined, not read again), and a short-lived verdict per key so the bookings that waited can
 * be answered synchronously ("found" or "does not exist") without reading again.
 */
import type { UnknownKeys } from '../db/queries.js';

export const jobKey = (id: string): string => `j\u0000${id}`;
export const folderKey = (id: string): string => `f\u0000${id}`;
export const subscriptionKey = (show: string, alloc: string): string => `s\u0000${show}\u0000${alloc}`;

/** Reads the keys and applies what it found to the store; returns the names of the keys found. */
export type KeyReader = (keys: UnknownKeys) => Promise<ReadonlySet<string>>;

/** Verdicts remembered at most; past it the oldest go (a flood of junk ids cannot grow memory). */
const MAX_VERDICTS = 10_000;

export class KeyResolver {
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly verdicts = new Map<string, { at: number; found: boolean }>();

  constructor(
    private readonly read: KeyReader,
    /** How long a verdict answers for its key without a new read. */
    private readonly verdictMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Read every key not already being read, in one read, and join those that are. Resolves
   * when all are done; never rejects (a failed read leaves no verdict: the caller retries).
   */
  resolve(keys: UnknownKeys): Promise<void> {
    const waits: Promise<void>[] = [];
    const fresh: UnknownKeys = { jobs: [], folders: [], subscriptions: [] };
    const names = new Set<string>();
    const take = (name: string, add: () => void) => {
      const pending = this.inFlight.get(name);
      if (pending !== undefined) {
        waits.push(pending);
      } else if (!names.has(name)) {
        names.add(name);
        add();
      }
    };
    for (const id of keys.jobs) take(jobKey(id), () => fresh.jobs.push(id));
    for (const id of keys.folders) take(folderKey(id), () => fresh.folders.push(id));
    for (const sub of keys.subscriptions) {
      take(subscriptionKey(sub.show, sub.alloc), () => fresh.subscriptions.push(sub));
    }
    if (names.size > 0) {
      const read = this.read(fresh).then(
        (found) => {
          const at = this.now();
          for (const name of names) this.remember(name, at, found.has(name));
          for (const name of names) this.inFlight.delete(name);
        },
        () => {
          for (const name of names) this.inFlight.delete(name);
        },
      );
      for (const name of names) this.inFlight.set(name, read);
      waits.push(read);
    }
    return Promise.all(waits).then(() => undefined);
  }

  /** A read of this key is under way. */
  pending(name: string): boolean {
    return this.inFlight.has(name);
  }

  /** True (found) or false (does not exist) from a recent read; undefined when none is recent. */
  verdict(name: string): boolean | undefined {
    const verdict = this.verdicts.get(name);
    if (verdict === undefined) return undefined;
    if (this.now() - verdict.at > this.verdictMs) {
      this.verdicts.delete(name);
      return undefined;
    }
    return verdict.found;
  }

  private remember(name: string, at: number, found: boolean): void {
    this.verdicts.delete(name);
    this.verdicts.set(name, { at, found });
    if (this.verdicts.size > MAX_VERDICTS) {
      const oldest = this.verdicts.keys().next().value;
      if (oldest !== undefined) this.verdicts.delete(oldest);
    }
  }
}
