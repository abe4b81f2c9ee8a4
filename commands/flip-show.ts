import { Args, Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { daemonFlags, databaseFlags, jsonFlag, secondsFlag } from '../src/cli/flags.js';

export const FLIP_TARGETS = ['scheduler', 'cuebot'] as const;

export default class FlipShow extends BaseCommand {
  static override summary = 'Make a show scheduler-managed (--to scheduler) or hand it back (--to cuebot).';

  static override description = `Shows the show's current usage versus caps first, then asks for confirmation (--yes skips it).

Flipping back to cuebot first rewrites that show's PostgreSQL accounting tables from SUM(proc), so the legacy \
path resumes on exact numbers.

--wait waits until the daemon reports the flip published (at most --timeout seconds).`;

  static override examples = [
    {
      description: 'Preview the flip of a show to the scheduler:',
      command: '<%= config.bin %> <%= command.id %> testshow --to scheduler --dry-run',
    },
    {
      description: 'Flip without prompting and wait for the daemon to pick it up:',
      command: '<%= config.bin %> <%= command.id %> testshow --to scheduler --yes --wait',
    },
    {
      description: 'Hand a show back to cuebot:',
      command: '<%= config.bin %> <%= command.id %> testshow --to cuebot --yes',
    },
  ];

  static override args = {
    show: Args.string({ description: 'Show name or id.', required: true }),
  };

  static override flags = {
    ...databaseFlags,
    ...daemonFlags,
    to: Flags.string({
      summary: 'Who accounts for the show from now on.',
      options: [...FLIP_TARGETS],
      required: true,
    }),
    'dry-run': Flags.boolean({ summary: 'Show what would change; change nothing.', default: false }),
    yes: Flags.boolean({ char: 'y', summary: 'Do not ask for confirmation.', default: false }),
    wait: Flags.boolean({ summary: 'Wait until the daemon reports the flip published.', default: false }),
    timeout: secondsFlag({ summary: 'How long --wait waits, in seconds.', default: 60, min: 1 }),
    json: jsonFlag,
  };

  override async run(): Promise<void> {
    await this.parse(FlipShow);
    this.notAvailable();
  }
}
