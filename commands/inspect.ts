import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { daemonFlags, jsonFlag, secondsFlag, showFlag } from '../src/cli/flags.js';

export const VERTICES = ['subscription', 'folder', 'job'] as const;
export const SORTS = ['utilization', 'name'] as const;

export default class Inspect extends BaseCommand {
  static override summary = 'Live view of counters versus caps from a running daemon.';

  static override description = `A terminal UI showing, per vertex, booked/cap with a bar, utilization and rejections, sorted by \
utilization, with a status line for the listener and the last recompute. Keys switch the vertex and the sort.

--once prints a single frame and exits (for scripts and when stdout is not a terminal); --json prints the state \
as JSON once (implies --once).`;

  static override examples = [
    { description: 'Watch the local daemon:', command: '<%= config.bin %> <%= command.id %>' },
    {
      description: 'One frame of the folders of one show:',
      command: '<%= config.bin %> <%= command.id %> --once --vertex folder --show testshow',
    },
    {
      description: 'The state of a remote daemon as JSON:',
      command: '<%= config.bin %> <%= command.id %> --json --daemon http://accounting:7878',
    },
  ];

  static override flags = {
    ...daemonFlags,
    once: Flags.boolean({ summary: 'Print one frame and exit.', default: false }),
    json: jsonFlag,
    show: showFlag('Only this show (name or id).'),
    vertex: Flags.string({
      summary: 'Which vertex to list.',
      options: [...VERTICES],
      default: 'subscription',
    }),
    sort: Flags.string({
      summary: 'Sort order (utilization: fullest first).',
      options: [...SORTS],
      default: 'utilization',
    }),
    interval: secondsFlag({
      summary: 'Refresh period in seconds.',
      default: 1,
      min: 0.2,
      max: 60,
    }),
  };

  override async run(): Promise<void> {
    await this.parse(Inspect);
    this.notAvailable();
  }
}
