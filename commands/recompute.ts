import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { daemonFlags, databaseFlags, jsonFlag, showFlag, coreMultiplierFlag } from '../src/cli/flags.js';

export default class Recompute extends BaseCommand {
  static override summary = 'Audit the accounting tables against SUM(proc); exit 1 when drift is found.';

  static override description = `One-shot audit for cron. Computes SUM(proc) per vertex and compares it with the PostgreSQL \
accounting tables (subscription, folder_resource, job_resource, layer_resource, point) and, when a daemon is \
reachable, with its live store (allowing the in-flight part it carries). Prints the drift, largest first, with \
show, allocation, folder and job names. Quiet when there is nothing to report (unless --verbose or --json).

Without --dry-run it also rewrites the PG tables of scheduler-managed shows from SUM(proc) (through the schema's \
triggers, the daemon's own PG-side recompute) and asks the daemon to recompute now.

For scheduler-managed shows the PG tables are display copies the daemon rewrites at every recompute pass: while a \
daemon answers, publishes the show and its passes succeed, their differences are reported as lag and not counted \
(--strict counts them). The default daemon address is optional: when nothing answers there the store is not \
compared; an address given with --daemon or CUEACCT_DAEMON must answer.

Exit codes: 0 no drift, 1 drift or another problem found (also when it was repaired), 2 usage or configuration \
error (unknown show), 3 database or daemon unreachable.`;

  static override examples = [
    { description: 'Audit only, for cron:', command: '<%= config.bin %> <%= command.id %> --dry-run' },
    {
      description: 'Audit and repair one show, as JSON:',
      command: '<%= config.bin %> <%= command.id %> --show testshow --json',
    },
    {
      description: 'Read-only audit of every show, Cuebot-owned ones included:',
      command: '<%= config.bin %> <%= command.id %> --all-shows --dry-run --verbose',
    },
  ];

  static override flags = {
    ...databaseFlags,
    ...daemonFlags,
    'dry-run': Flags.boolean({
      summary: 'Only compare and print the drift; write nothing, do not ask the daemon to recompute.',
      default: false,
    }),
    show: showFlag('Audit only this show (name or id).', ['all-shows']),
    'all-shows': Flags.boolean({
      summary:
        'Audit every show, not only the scheduler-managed ones (rewrites still touch managed shows only).',
      default: false,
      exclusive: ['show'],
    }),
    'skip-daemon': Flags.boolean({
      summary: 'Do not contact a daemon: audit the PG tables only.',
      default: false,
    }),
    strict: Flags.boolean({
      summary: 'Count the display lag of scheduler-managed shows as drift.',
      default: false,
    }),
    'core-multiplier': coreMultiplierFlag,
    json: jsonFlag,
  };

  override async run(): Promise<void> {
    const { flags } = await this.parse(Recompute);
    const { recompute, daemonGivenExplicitly } = await import('../src/ops/recompute.js');
    const { result, text } = await recompute({
      databaseUrl: flags['database-url'],
      daemonUrl: flags['skip-daemon'] ? undefined : flags.daemon,
      token: flags.token,
      daemonRequired: !flags['skip-daemon'] && daemonGivenExplicitly(this.argv),
      show: flags.show,
      allShows: flags['all-shows'],
      dryRun: flags['dry-run'],
      strict: flags.strict,
      multiplier: flags['core-multiplier'],
      verbose: this.verbose,
    });
    if (flags.json) this.printJson(result);
    else if (text !== '') this.log(text);
    if (!result.ok) this.exit(1);
  }
}
