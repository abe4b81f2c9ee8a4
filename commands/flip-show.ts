import { Args, Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { daemonFlags, databaseFlags, jsonFlag, secondsFlag, coreMultiplierFlag } from '../src/cli/flags.js';

export const FLIP_TARGETS = ['scheduler', 'cuebot'] as const;

export default class FlipShow extends BaseCommand {
  static override summary = 'Make a show scheduler-managed (--to scheduler) or hand it back (--to cuebot).';

  static override description = `Shows the show's current usage versus caps first (what the daemon loads and enforces) and what \
will change, then asks for confirmation on a terminal (--yes skips it; without a terminal --yes is required).

The flip is one transaction: show.b_scheduler_managed is set with pg_notify('acct_managed_change', …) so a running \
daemon picks it up at once. Flipping back to cuebot first rewrites that show's PostgreSQL accounting tables from \
SUM(proc) in the same transaction, so the legacy path resumes on exact numbers.

Flipping to cuebot is two-phase: first the daemon (--daemon) stops taking bookings of the show (they answer 409 \
show_draining) and waits until none is in flight — each confirmed, rolled back or expired — for at most --timeout \
seconds; then the rewrite and the flag commit in one transaction, only while the daemon still holds the drain. If the \
show cannot drain in time the flip is refused (exit 1), the drain is lifted and the show stays managed. When nothing \
listens at the daemon address no booking can be in flight, and the flip goes ahead without a drain; a daemon that \
stops answering midway refuses the flip (exit 3).

--wait waits until the daemon reports the flip published (at most --timeout seconds) and says how long it took.

Exit codes: 0 flipped (or nothing to change), 1 the show did not drain in time, the daemon did not publish the flip \
in time or the flip was cancelled, 2 usage or configuration error (unknown show, no terminal to confirm on), 3 database or daemon \
unreachable.`;

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
    timeout: secondsFlag({
      summary: 'How long the drain (--to cuebot) and --wait each wait, in seconds.',
      default: 60,
      min: 1,
      max: 600,
    }),
    'core-multiplier': coreMultiplierFlag,
    json: jsonFlag,
  };

  override async run(): Promise<void> {
    const { args, flags } = await this.parse(FlipShow);
    const [{ flipShow }, { askYesNo }] = await Promise.all([
      import('../src/ops/flip.js'),
      import('../src/ops/prompt.js'),
    ]);
    const result = await flipShow(
      {
        databaseUrl: flags['database-url'],
        show: args.show,
        to: flags.to as (typeof FLIP_TARGETS)[number],
        dryRun: flags['dry-run'],
        yes: flags.yes,
        wait: flags.wait,
        timeoutMs: flags.timeout * 1000,
        daemonUrl: flags.daemon,
        token: flags.token,
        multiplier: flags['core-multiplier'],
      },
      {
        print: (text) => {
          if (!flags.json) this.log(text);
        },
        confirm: askYesNo,
      },
    );
    if (flags.json) this.printJson(result);
  }
}
