/**
 * `npm run stress`: every phase of the stress suite against the real daemon and a real
 * PostgreSQL, with a per-phase report; exit 1 when the audit found a violation.
 *
 * Server: STRESS_ADMIN_URL, else TEST_DATABASE_URL, else the local server on 127.0.0.1:5432,
 * else a throwaway cluster started here. Each phase creates and drops its own database; the
 * restart phase runs on a private cluster (the shared server is never restarted).
 *
 * Scale knobs (environment): STRESS_SCALE=ci for the small CI scale, and any of
 * STRESS_PHASE_MS, STRESS_RATE, STRESS_WORKERS, … (see harness.ts); STRESS_PHASES=drain,flip
 * runs a subset; STRESS_SEED fixes the simulator's seed; STRESS_REPORT_JSON=path writes the
 * results as JSON (stress.test.ts reads it).
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { startCluster } from '../../src/embedded/cluster.js';
import { serverAnswers } from '../../src/db/connection.js';
import { CI_SCALE, DEFAULT_SCALE, LOCAL_ADMIN_URL, describeKnobs, scaleFromEnv } from './harness.js';
import { PHASES, runPhase, type PhaseResult } from './phases.js';
import { guardPostgresTeardown } from '../../src/db/teardown-guard.js';

/** postgres.js teardown errors in this (harness) process, ignored and reported per phase. */
const swallowed = { rejections: 0, nullWrites: 0 };

async function main(): Promise<number> {
  guardPostgresTeardown((kind) => (kind === 'rejection' ? swallowed.rejections++ : swallowed.nullWrites++));
  const env = process.env;
  const scale = scaleFromEnv(env.STRESS_SCALE === 'ci' ? CI_SCALE : DEFAULT_SCALE);
  const wanted = env.STRESS_PHASES ? new Set(env.STRESS_PHASES.split(',').map((s) => s.trim())) : undefined;
  const phases = PHASES.filter((p) => wanted === undefined || wanted.has(p.id));
  if (phases.length === 0) {
    console.error(`STRESS_PHASES matches no phase; phases: ${PHASES.map((p) => p.id).join(', ')}`);
    return 2;
  }

  let adminUrl = env.STRESS_ADMIN_URL || env.TEST_DATABASE_URL;
  let stopCluster = async () => {};
  if (!adminUrl && (await serverAnswers(LOCAL_ADMIN_URL, 2_000))) adminUrl = LOCAL_ADMIN_URL;
  if (!adminUrl) {
    const cluster = await startCluster({});
    console.log(
      `no PostgreSQL given or on 127.0.0.1:5432: using a throwaway cluster on port ${cluster.port}`,
    );
    adminUrl = cluster.url;
    stopCluster = cluster.stop;
  }

  console.log(`cueacct stress suite — ${phases.length} phases`);
  console.log(
    `machine: ${os.cpus().length} CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, node ${process.version}`,
  );
  console.log(`scale: ${JSON.stringify(scale)}`);
  console.log(`(knobs: STRESS_SCALE=ci, ${describeKnobs()}, STRESS_PHASES, STRESS_SEED)\n`);

  const seed = env.STRESS_SEED ? Number(env.STRESS_SEED) : undefined;
  const results: PhaseResult[] = [];
  const started = Date.now();
  try {
    for (const phase of phases) {
      process.stdout.write(`▶ ${phase.title} …\n`);
      const before = { ...swallowed };
      const result = await runPhase(phase, {
        adminUrl,
        scale,
        ...(seed === undefined ? {} : { seed }),
        log: (line) => console.log(`    ${line}`),
      });
      const rejections = swallowed.rejections - before.rejections;
      const nullWrites = swallowed.nullWrites - before.nullWrites;
      if (rejections + nullWrites > 0) {
        result.notes.push(
          `harness: postgres.js teardown errors in this process ignored (${rejections} unhandled rejections, ${nullWrites} null-socket writes)`,
        );
      }
      results.push(result);
      printPhase(result);
    }
  } finally {
    await stopCluster();
  }
  if (env.STRESS_REPORT_JSON)
    writeFileSync(env.STRESS_REPORT_JSON, JSON.stringify({ scale, results }, null, 2));

  console.log('\nsummary');
  console.table(
    results.map((r) => ({
      phase: r.title.split(':')[0],
      result: r.ok ? 'PASS' : `FAIL (${r.violations.length})`,
      seconds: (r.ms / 1000).toFixed(1),
      applied: r.figures['bookings applied'] ?? '',
      'bookings/s': r.figures['bookings/s (book→insert→confirm)'] ?? '',
      'book p50/p99': r.figures['book request p50/p99'] ?? '',
    })),
  );
  const failed = results.filter((r) => !r.ok).length;
  console.log(
    `${results.length - failed}/${results.length} phases passed in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  return failed === 0 ? 0 : 1;
}

function printPhase(r: PhaseResult): void {
  console.log(`  ${r.ok ? 'PASS' : 'FAIL'} in ${(r.ms / 1000).toFixed(1)} s`);
  const width = Math.max(0, ...Object.keys(r.figures).map((k) => k.length));
  for (const [name, value] of Object.entries(r.figures)) console.log(`    ${name.padEnd(width)}  ${value}`);
  for (const note of r.notes) console.log(`    · ${note}`);
  for (const v of r.violations) console.log(`    ✗ ${v}`);
  console.log('');
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  },
);
