/**
 * The stress suite at CI scale: every phase against the real daemon process and a real
 * PostgreSQL, each audited (build first: `npm run build`; `npm test` does).
 *
 * Each phase runs in its own process — `node build/test/stress/run.js`, the script behind
 * `npm run stress`, with STRESS_SCALE=ci — because the phases kill database connections and
 * restart a server, and postgres.js can turn such a teardown into an unhandled error in the
 * process that owns the connection; run.ts contains exactly those (src/db/teardown-guard.ts). Vitest only
 * sees each phase's verdict: its violations, in words.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type { PhaseResult } from './phases.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const RUNNER = path.join(ROOT, 'build', 'test', 'stress', 'run.js');
const PHASES = [
  'drain',
  'saturation',
  'straddle',
  'dropped',
  'flip',
  'listener',
  'restart',
  'flood',
  'second-serve',
  'client-death',
];
const dir = mkdtempSync(path.join(tmpdir(), 'cueacct-stress-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runPhase(
  id: string,
): Promise<{ code: number | null; output: string; result: PhaseResult | undefined }> {
  const json = path.join(dir, `${id}.json`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUNNER], {
      env: {
        ...process.env,
        STRESS_SCALE: 'ci',
        STRESS_PHASES: id,
        STRESS_ADMIN_URL: inject('adminUrl'),
        STRESS_REPORT_JSON: json,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      let result: PhaseResult | undefined;
      try {
        result = (JSON.parse(readFileSync(json, 'utf8')) as { results: PhaseResult[] }).results[0];
      } catch {
        result = undefined;
      }
      resolve({ code, output, result });
    });
  });
}

describe('stress phases (CI scale, real daemon, real PostgreSQL)', () => {
  it('has the runner built', () => {
    expect(() => readFileSync(RUNNER), `run \`npm run build\` first (${RUNNER})`).not.toThrow();
  });

  for (const id of PHASES) {
    it(id, { timeout: 180_000 }, async () => {
      const { code, output, result } = await runPhase(id);
      expect(result, `the runner wrote no result (exit ${code}):\n${output.slice(-4_000)}`).toBeDefined();
      if (process.env.STRESS_VERBOSE) console.log(output);
      expect(result!.violations, `${result!.title}\n${output.slice(-4_000)}`).toEqual([]);
      expect(code).toBe(0);
    });
  }
});
