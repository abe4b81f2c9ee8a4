/**
 * The release benchmark's producer, in a worker thread (the service under test owns the main
 * thread's event loop): Cuebot-style transactions — DELETE procs and one `acct_release` per
 * proc, COMMIT — paced to a target rate or as fast as `connections` sessions go. For every
 * proc it reports the job id (unique per proc in the bench farm) and when COMMIT was sent.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import postgres from 'postgres';

export interface ProducerInput {
  url: string;
  /** Proc ids, already grouped into transactions (one job at most once per transaction). */
  transactions: string[][];
  /** Target releases per second over all sessions; 0 = as fast as possible. */
  rate: number;
  connections: number;
}

export interface ProducerOutput {
  /** Per released proc: its job and the time its COMMIT was sent (ms since the epoch). */
  jobs: string[];
  commitSentAt: number[];
  /** When that COMMIT was acknowledged. */
  commitAckAt: number[];
  /** Time of the first BEGIN and of the last COMMIT acknowledgement. */
  startedAt: number;
  endedAt: number;
}

const now = () => performance.timeOrigin + performance.now();

async function main(input: ProducerInput): Promise<ProducerOutput> {
  const sql = postgres(input.url, { max: input.connections, onnotice: () => undefined });
  const jobs: string[] = [];
  const commitSentAt: number[] = [];
  const commitAckAt: number[] = [];
  let next = 0;
  const startedAt = now();
  let released = 0;
  const session = async () => {
    const conn = await sql.reserve();
    try {
      for (;;) {
        const i = next++;
        const ids = input.transactions[i];
        if (ids === undefined) return;
        if (input.rate > 0) {
          // Pace on the whole: transaction i starts when its first release is due.
          const due = startedAt + (released / input.rate) * 1000;
          const wait = due - now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        }
        released += ids.length;
        await conn`BEGIN`;
        const rows = await conn<{ job: string }[]>`
          WITH d AS (
            DELETE FROM proc p USING job j, host h
            WHERE p.pk_proc = ANY(${ids}) AND j.pk_job = p.pk_job AND h.pk_host = p.pk_host
            RETURNING j.pk_show AS show, h.pk_alloc AS alloc, j.pk_folder AS folder, j.pk_job AS job,
                      p.pk_layer AS layer, j.pk_dept AS dept, p.int_cores_reserved AS cores, p.int_gpus_reserved AS gpus
          )
          SELECT job, pg_notify('acct_release', json_build_object(
                   'show', show, 'alloc', alloc, 'folder', folder, 'job', job, 'layer', layer, 'dept', dept,
                   'cores', -(cores / 100), 'gpus', -gpus)::text) AS sent
          FROM d`;
        const sent = now();
        await conn`COMMIT`;
        const ack = now();
        for (const row of rows) {
          jobs.push(row.job);
          commitSentAt.push(sent);
          commitAckAt.push(ack);
        }
      }
    } finally {
      conn.release();
    }
  };
  await Promise.all(Array.from({ length: input.connections }, session));
  const endedAt = now();
  await sql.end({ timeout: 5 });
  return { jobs, commitSentAt, commitAckAt, startedAt, endedAt };
}

if (parentPort !== null && workerData !== null && workerData !== undefined) {
  main(workerData as ProducerInput).then(
    (output) => parentPort!.postMessage({ ok: true, output }),
    (error: unknown) => parentPort!.postMessage({ ok: false, error: String(error) }),
  );
}
