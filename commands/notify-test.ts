import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { daemonFlags, databaseFlags, jsonFlag, jsonValueFlag, secondsFlag } from '../src/cli/flags.js';

export default class NotifyTest extends BaseCommand {
  static override summary =
    'End-to-end check of the notification path (LISTEN/NOTIFY round trip, daemon listener).';

  static override description = `Sends a test NOTIFY through the database and measures the LISTEN round-trip latency, then checks \
that the daemon's listener is connected and received it (its /v1/status counters). The probe is an \
acct_managed_change naming no real show: a daemon answers it with a managed-shows refresh, nothing else.

--count N sends a burst of N (each in its own transaction) and reports the throughput and the p50/p99 latency.

--release / --limit-change send one validated real payload instead of a probe (staging use; a running daemon \
applies it to its live counters or caps, hence the warning on stderr). A payload the daemon would drop is a usage \
error naming the field.

Exit codes: 0 everything came back, 1 a probe failed (notifications lost, the daemon's listener is disconnected \
or did not receive them), 2 usage error (bad payload), 3 database or daemon unreachable (the database round trip \
is still printed when only the daemon is down; --skip-daemon checks the database only).`;

  static override examples = [
    { description: 'One round trip:', command: '<%= config.bin %> <%= command.id %>' },
    {
      description: 'A burst of 1000 notifications, as JSON:',
      command: '<%= config.bin %> <%= command.id %> --count 1000 --json',
    },
    {
      description: 'Send a real release payload (staging):',
      command: `<%= config.bin %> <%= command.id %> --release '{"show":"…","alloc":"…","folder":"…","job":"…","cores":-1,"gpus":0}'`,
    },
  ];

  static override flags = {
    ...databaseFlags,
    ...daemonFlags,
    count: Flags.integer({
      summary: 'Number of notifications to send (a burst reports throughput).',
      default: 1,
      min: 1,
      max: 1_000_000,
    }),
    release: jsonValueFlag({ summary: 'Send this release payload (JSON), validated first.' }),
    'limit-change': jsonValueFlag({ summary: 'Send this limit-change payload (JSON), validated first.' }),
    timeout: secondsFlag({
      summary: 'How long to wait for the notifications to arrive, in seconds.',
      default: 10,
      min: 0.1,
    }),
    'skip-daemon': Flags.boolean({
      summary: 'Check the database round trip only; do not contact a daemon.',
      default: false,
    }),
    json: jsonFlag,
  };

  override async run(): Promise<void> {
    const { flags } = await this.parse(NotifyTest);
    const [{ notifyTest, renderNotifyTest }, { unreachableError }] = await Promise.all([
      import('../src/ops/notify-probe.js'),
      import('../src/cli/errors.js'),
    ]);
    const result = await notifyTest(
      {
        databaseUrl: flags['database-url'],
        daemonUrl: flags['skip-daemon'] ? undefined : flags.daemon,
        token: flags.token,
        count: flags.count,
        release: flags.release,
        limitChange: flags['limit-change'],
        timeoutMs: flags.timeout * 1000,
      },
      (text) => process.stderr.write(`${this.redact(text)}\n`),
    );
    if (flags.json) this.printJson(result);
    else this.log(renderNotifyTest(result));
    if (result.exit_code === 3) {
      throw unreachableError(result.daemon?.error ?? 'cannot reach the daemon');
    }
    if (result.exit_code !== 0) this.exit(result.exit_code);
  }
}
