import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { daemonFlags, databaseFlags, jsonFlag, jsonValueFlag, secondsFlag } from '../src/cli/flags.js';

export default class NotifyTest extends BaseCommand {
  static override summary =
    'End-to-end check of the notification path (LISTEN/NOTIFY round trip, daemon listener).';

  static override description = `Sends a test NOTIFY through the database and measures the LISTEN round-trip latency, then checks \
that the daemon's listener is connected and received it. Exit 1 when a probe fails.

--release / --limit-change send a validated real payload instead of a test one (staging use). --count N sends a \
burst and reports the throughput.`;

  static override examples = [
    { description: 'One round trip:', command: '<%= config.bin %> <%= command.id %>' },
    {
      description: 'A burst of 1000 notifications, as JSON:',
      command: '<%= config.bin %> <%= command.id %> --count 1000 --json',
    },
    {
      description: 'Send a real release payload (staging):',
      command: `<%= config.bin %> <%= command.id %> --release '{"show":"…","alloc":"…","folder":"…","job":"…","cores":100,"gpus":0}'`,
    },
  ];

  static override flags = {
    ...databaseFlags,
    ...daemonFlags,
    count: Flags.integer({
      summary: 'Number of notifications to send (a burst reports throughput).',
      default: 1,
      min: 1,
    }),
    release: jsonValueFlag({ summary: 'Send this release payload (JSON), validated first.' }),
    'limit-change': jsonValueFlag({ summary: 'Send this limit-change payload (JSON), validated first.' }),
    timeout: secondsFlag({
      summary: 'How long to wait for the notifications to arrive, in seconds.',
      default: 10,
      min: 0.1,
    }),
    json: jsonFlag,
  };

  override async run(): Promise<void> {
    await this.parse(NotifyTest);
    this.notAvailable();
  }
}
