import { BaseCommand } from '../src/cli/base-command.js';
import {
  daemonUrlFlag,
  databaseFlags,
  jsonFlag,
  showFlag,
  tokenFlag,
  coreMultiplierFlag,
} from '../src/cli/flags.js';

export default class Seed extends BaseCommand {
  static override summary =
    'Run the bootstrap seed once and print what it loaded (booked vs cap per vertex).';

  static override description = `Reads the database into a fresh in-memory store, the way the daemon bootstraps, and prints \
per vertex (subscription, folder, job) what is booked against which cap, with counts and the time taken. Writes \
nothing.

--show NAME|ID runs the managed-flip seed of that one show instead (also for a show that is not managed yet: \
it shows what a flip would load).

--daemon URL asks that running daemon to reseed now (POST /v1/admin/reseed) instead of seeding locally, and \
prints its status after.

Exit codes: 0 done, 2 usage or configuration error (unknown show), 3 database or daemon unreachable.`;

  static override examples = [
    {
      description: 'Seed from $DATABASE_URL and print the result:',
      command: '<%= config.bin %> <%= command.id %>',
    },
    {
      description: 'The managed-flip seed of one show, as JSON:',
      command: '<%= config.bin %> <%= command.id %> --show testshow --json',
    },
    {
      description: 'Ask the running daemon to reseed now:',
      command: '<%= config.bin %> <%= command.id %> --daemon http://127.0.0.1:7878',
    },
  ];

  static override flags = {
    ...databaseFlags,
    show: showFlag('Run the managed-flip seed of this one show (name or id).', ['daemon']),
    // No default and no environment variable: giving --daemon switches the command to "ask the daemon".
    daemon: daemonUrlFlag({
      summary:
        'Ask the daemon at this address (http://HOST:PORT, unix:/PATH) to reseed now instead of seeding locally.',
      exclusive: ['show'],
    }),
    token: tokenFlag(),
    'core-multiplier': coreMultiplierFlag,
    json: jsonFlag,
  };

  override async run(): Promise<void> {
    const { flags } = await this.parse(Seed);
    const ops = await import('../src/ops/seed.js');
    if (flags.daemon !== undefined) {
      const result = await ops.reseedDaemon(flags.daemon, flags.token);
      if (flags.json) this.printJson(result);
      else this.log(ops.renderDaemonReseed(result));
      return;
    }
    const report = await ops.seedFromDatabase({
      databaseUrl: flags['database-url'],
      show: flags.show,
      multiplier: flags['core-multiplier'],
    });
    if (flags.json) this.printJson(report);
    else this.log(ops.renderSeedReport(report));
  }
}
