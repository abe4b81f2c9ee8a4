/**
 * Writes that Cuebot and admin tools make, each with its NOTIFY in the same transaction,
 * emitting exactly the wire contract of SPEC §2. Used by tests, the simulator and
 * `notify-test`; `flip-show` uses `setShowManaged`.
 */
import type { Sql } from 'postgres';
import {
  LIMIT_CHANGE_CHANNEL,
  MANAGED_CHANGE_CHANNEL,
  RELEASE_CHANNEL,
  encodeLimitChange,
  encodeManagedChange,
  encodeRelease,
  type ReleaseMessage,
} from '../core/wire.js';
import { capCoresFromCenticores } from '../core/units.js';

/** Internal channel of the recompute fence (see docs/architecture.md). */
export const FENCE_CHANNEL = 'cueacct_fence';

/** Internal channel of `cueacct notify-test` probes: counted by the daemon, applied to nothing. */
export const PROBE_CHANNEL = 'cueacct_probe';

export interface ReleasedProc extends ReleaseMessage {
  proc: string;
  layer: string;
  dept: string;
  /** Whether the show is scheduler-managed (only then does Cuebot send acct_release). */
  notified: boolean;
}

/**
 * DELETE procs inside the caller's transaction and return what each `acct_release` would
 * carry: whole cores per proc (centicores / multiplier, as Cuebot divides them), negative.
 * Sends nothing: `releaseProcs` adds the notifications, the simulator and the stress suite
 * use it alone for releases whose notification is lost or sent by hand.
 */
export async function deleteProcs(
  tx: Sql,
  procIds: readonly string[],
  multiplier: number,
): Promise<ReleasedProc[]> {
  if (procIds.length === 0) return [];
  const rows = await tx<(Omit<ReleasedProc, 'cores' | 'gpus'> & { centicores: string; gpus: number })[]>`
    DELETE FROM proc p USING job j, host h, show s
    WHERE p.pk_proc = ANY(${procIds as string[]})
      AND j.pk_job = p.pk_job AND h.pk_host = p.pk_host AND s.pk_show = j.pk_show
    RETURNING p.pk_proc AS proc, j.pk_show AS show, h.pk_alloc AS alloc, j.pk_folder AS folder,
              j.pk_job AS job, p.pk_layer AS layer, j.pk_dept AS dept,
              p.int_cores_reserved AS centicores, p.int_gpus_reserved AS gpus,
              s.b_scheduler_managed AS notified`;
  return rows.map(({ centicores, ...row }) => ({
    ...row,
    cores: -Math.trunc(Number(centicores) / multiplier),
    gpus: -row.gpus,
  }));
}

/**
 * Destroy procs the way Cuebot does: DELETE and, for managed shows, one acct_release per
 * proc in the same transaction.
 */
export async function releaseProcs(
  sql: Sql,
  procIds: readonly string[],
  multiplier: number,
): Promise<ReleasedProc[]> {
  if (procIds.length === 0) return [];
  return sql.begin(async (tx) => {
    const released = await deleteProcs(tx as unknown as Sql, procIds, multiplier);
    const payloads = released.filter((r) => r.notified).map((r) => encodeRelease(r));
    if (payloads.length > 0) {
      await tx`SELECT pg_notify(${RELEASE_CHANNEL}, payload) FROM unnest(${payloads}::text[]) AS payload`;
    }
    return released;
  }) as Promise<ReleasedProc[]>;
}

async function notifyIfManaged(tx: Sql, show: string, payload: string): Promise<boolean> {
  const [row] = await tx<
    { managed: boolean }[]
  >`SELECT b_scheduler_managed AS managed FROM show WHERE pk_show = ${show}`;
  if (row?.managed !== true) return false;
  await tx`SELECT pg_notify(${LIMIT_CHANGE_CHANNEL}, ${payload})`;
  return true;
}

/** Change a subscription's burst (centicores) and notify, as an admin tool does. */
export async function changeSubscriptionBurst(
  sql: Sql,
  change: { show: string; alloc: string; burstCenticores: number },
  multiplier: number,
): Promise<boolean> {
  return sql.begin(async (tx) => {
    const updated = await tx`
      UPDATE subscription SET int_burst = ${change.burstCenticores}
      WHERE pk_show = ${change.show} AND pk_alloc = ${change.alloc}`;
    if (updated.count === 0)
      throw new Error(`no subscription for show ${change.show} on alloc ${change.alloc}`);
    const burst = capCoresFromCenticores(change.burstCenticores, multiplier);
    return notifyIfManaged(
      tx as unknown as Sql,
      change.show,
      encodeLimitChange({ vertex: 'sub', show: change.show, alloc: change.alloc, burst }),
    );
  }) as Promise<boolean>;
}

/** Change a folder's or job's max cores (centicores) and/or max GPUs and notify. */
export async function changeNodeLimits(
  sql: Sql,
  change: { vertex: 'folder' | 'job'; id: string; maxCoresCenticores?: number; maxGpus?: number },
  multiplier: number,
): Promise<boolean> {
  const { vertex, id, maxCoresCenticores, maxGpus } = change;
  if (maxCoresCenticores === undefined && maxGpus === undefined) throw new Error('nothing to change');
  return sql.begin(async (tx) => {
    const table = vertex === 'folder' ? tx`folder_resource` : tx`job_resource`;
    const key = vertex === 'folder' ? tx`pk_folder` : tx`pk_job`;
    const rows = await tx<{ show: string }[]>`
      UPDATE ${table} r
      SET int_max_cores = COALESCE(${maxCoresCenticores ?? null}::int, r.int_max_cores),
          int_max_gpus = COALESCE(${maxGpus ?? null}::int, r.int_max_gpus)
      FROM ${vertex === 'folder' ? tx`folder` : tx`job`} o
      WHERE r.${key} = ${id} AND o.${key} = r.${key}
      RETURNING o.pk_show AS show`;
    const show = rows[0]?.show;
    if (show === undefined) throw new Error(`no ${vertex} ${id}`);
    const payload = encodeLimitChange({
      vertex,
      id,
      ...(maxCoresCenticores === undefined
        ? {}
        : { max_cores: capCoresFromCenticores(maxCoresCenticores, multiplier) }),
      ...(maxGpus === undefined ? {} : { max_gpus: maxGpus }),
    });
    return notifyIfManaged(tx as unknown as Sql, show, payload);
  }) as Promise<boolean>;
}

/**
 * Flip a show's owner inside the caller's transaction, with `acct_managed_change` so a
 * running daemon refreshes its managed set at once (SPEC §1 "Fast flip").
 */
export async function setShowManaged(tx: Sql, show: string, managed: boolean): Promise<void> {
  await tx`UPDATE show SET b_scheduler_managed = ${managed} WHERE pk_show = ${show}`;
  await tx`SELECT pg_notify(${MANAGED_CHANGE_CHANNEL}, ${encodeManagedChange({ show, managed })})`;
}
