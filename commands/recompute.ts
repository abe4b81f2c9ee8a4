import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { daemonFlags, databaseFlags, jsonFlag, showFlag } from '../src/cli/flags.js';

export default class Recompute extends BaseCommand {
  static override summary = 'Audit the accounting tables against SUM(proc); exit 1 when drift is found.';

  static override description = `One-shot audit for cron. Computes SUM(proc) per vertex and compares it with the PostgreSQL \
accounting tables (subscription, folder_resource, job_resource, layer_resource, point) and, when a daemon is \
reachable, with its live store. Prints the drift.

Without --dry-run it also rewrites the PG tables of scheduler-managed shows (respecting the schema's triggers) and \
asks the daemon to recompute now.

Exit codes: 0 no drift, 1 drift found, 2 usage or configuration error, 3 database unreachable.`;

  static override examples = [
    { description: 'Audit only, for cron:', command: '<%= config.bin %> <%= command.id %> --dry-run' },
    {
      description: 'Audit and repair one show, as JSON:',
      command: '<%= config.bin %> <%= command.id %> --show testshow --json',
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
    json: jsonFlag,
  };

  override async run(): Promise<void> {
    await this.parse(Recompute);
    this.notAvailable();
  }
}
