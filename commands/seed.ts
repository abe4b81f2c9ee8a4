import { BaseCommand } from '../src/cli/base-command.js';
import { daemonUrlFlag, databaseFlags, jsonFlag, showFlag, tokenFlag } from '../src/cli/flags.js';

export default class Seed extends BaseCommand {
  static override summary =
    'Run the bootstrap seed once and print what it loaded (booked vs cap per vertex).';

  static override description = `Reads the database into a fresh in-memory store, the way the daemon bootstraps, and prints \
per vertex (subscription, folder, job) what is booked against which cap. Writes nothing.

--show NAME|ID runs the managed-flip seed of that one show instead.

--daemon URL asks that running daemon to reseed now (POST /v1/admin/reseed) instead of seeding locally.`;

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
    show: showFlag('Run the managed-flip seed of this one show (name or id).'),
    // No default and no environment variable: giving --daemon switches the command to "ask the daemon".
    daemon: daemonUrlFlag({
      summary:
        'Ask the daemon at this address (http://HOST:PORT, unix:/PATH) to reseed now instead of seeding locally.',
    }),
    token: tokenFlag(),
    json: jsonFlag,
  };

  override async run(): Promise<void> {
    await this.parse(Seed);
    this.notAvailable();
  }
}
