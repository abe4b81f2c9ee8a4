import { describe, expect, it } from 'vitest';
import { isOverCap, utilization } from '../../src/core/vertex.js';

const sub = (cores: number, burst: number) => ({
  kind: 'subscription' as const,
  cores,
  gpus: 0,
  maxCores: burst,
  maxGpus: -1,
});
const job = (cores: number, gpus: number, maxCores: number, maxGpus: number) => ({
  kind: 'job' as const,
  cores,
  gpus,
  maxCores,
  maxGpus,
});

describe('utilization and over-cap', () => {
  it('subscription: cores against burst; burst 0 has no utilization and any usage is over it', () => {
    expect(utilization(sub(5, 10))).toBe(0.5);
    expect(utilization(sub(0, 0))).toBeNull();
    expect(isOverCap(sub(0, 0))).toBe(false);
    expect(isOverCap(sub(1, 0))).toBe(true);
    expect(isOverCap(sub(10, 10))).toBe(false);
  });

  it('folder/job: the fuller of cores and GPUs; caps <= 0 are unlimited', () => {
    expect(utilization(job(5, 3, 10, 4))).toBe(0.75);
    expect(utilization(job(5, 3, -1, -1))).toBeNull();
    expect(utilization(job(5, 3, 0, 6))).toBe(0.5);
    expect(isOverCap(job(11, 0, 10, -1))).toBe(true);
    expect(isOverCap(job(1, 5, 10, 4))).toBe(true);
    expect(isOverCap(job(500, 500, -1, 0))).toBe(false);
  });
});
