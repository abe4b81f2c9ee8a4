/**
 * `cueacct recompute`: open the connections, run the audit (and the repair without
 * --dry-run), and produce the report. The command prints it and sets the exit code.
 */
import { findShow } from '../db/queries.js';
import { renderAudit } from './audit-report.js';
import { runAudit, repairAndRecheck, type AuditOptions, type AuditResult, type AuditScope } from './audit.js';
import { daemonClient, openDatabase } from './connect.js';
import { unknownShow } from './seed.js';

export { daemonGivenExplicitly } from './connect.js';

export interface RecomputeOptions {
  databaseUrl: string | undefined;
  /** Undefined: do not contact a daemon. */
  daemonUrl: string | undefined;
  token: string | undefined;
  daemonRequired: boolean;
  show: string | undefined;
  allShows: boolean;
  dryRun: boolean;
  strict: boolean;
  multiplier: number;
  verbose: boolean;
}

export async function recompute(options: RecomputeOptions): Promise<{ result: AuditResult; text: string }> {
  const db = await openDatabase(options.databaseUrl, 'cueacct-recompute', 3);
  const daemon = options.daemonUrl === undefined ? undefined : daemonClient(options.daemonUrl, options.token);
  try {
    let scope: AuditScope;
    if (options.show !== undefined) {
      const show = await findShow(db.sql, options.show);
      if (show === undefined) throw unknownShow(options.show);
      scope = { kind: 'show', show };
    } else {
      scope = { kind: options.allShows ? 'all' : 'managed' };
    }
    const auditOptions: AuditOptions = {
      scope,
      multiplier: options.multiplier,
      ...(daemon === undefined ? {} : { daemon }),
      daemonRequired: options.daemonRequired,
      strict: options.strict,
      dryRun: options.dryRun,
    };
    let result = await runAudit(db.sql, auditOptions);
    if (!options.dryRun) result = await repairAndRecheck(db.sql, auditOptions, result);
    return { result, text: renderAudit(result, options.verbose) };
  } finally {
    daemon?.close();
    await db.close();
  }
}
