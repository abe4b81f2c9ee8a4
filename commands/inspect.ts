import { Flags } from '@oclif/core';

import type { StatusResponse, VertexDetailResponse } from '../src/api/types.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { DaemonClient } from '../src/cli/daemon-client.js';
import { daemonFlags, jsonFlag, secondsFlag, showFlag } from '../src/cli/flags.js';
import type { VertexKind } from '../src/core/types.js';
import { renderPlainFrame } from '../src/tui/plain.js';
import type { SortOrder } from '../src/tui/view-model.js';

/** A hung daemon must show as unreachable, not freeze the display. */
const FETCH_TIMEOUT_MS = 3_000;

export const VERTICES = ['subscription', 'folder', 'job'] as const;
export const SORTS = ['utilization', 'name', 'blocked'] as const;

export default class Inspect extends BaseCommand {
  static override summary = 'Live view of counters versus caps from a running daemon.';

  static override description = `A terminal UI showing, per vertex, booked/cap with a bar, utilization and refusals per second, \
sorted by utilization (or most blocked first), with a status line for the listener and the last recompute. Keys switch \
the vertex and the sort; Enter on a row opens why it is not getting cores: the caps in its path (booked/cap, which one \
binds, refusals per table) and sparklines of its last 10 minutes.

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
    {
      description: 'Why one job is not getting cores (its caps, which binds, its last 10 minutes):',
      command: '<%= config.bin %> <%= command.id %> --once --vertex job --key <job id>',
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
    key: Flags.string({
      summary: 'With --once or --json: the detail of this vertex (its key as listed) instead of the table.',
      helpValue: '<key>',
    }),
    sort: Flags.string({
      summary: 'Sort order (utilization: fullest first; blocked: most refused first).',
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
    const { flags } = await this.parse(Inspect);
    const client = new DaemonClient({
      url: flags.daemon,
      ...(flags.token === undefined ? {} : { token: flags.token }),
      timeoutMs: FETCH_TIMEOUT_MS,
    });
    const vertex = flags.vertex as VertexKind;
    const sort = flags.sort as SortOrder;
    const fetchSnapshot = async (
      query: { vertex: VertexKind; detail?: { kind: VertexKind; key: string } } = { vertex },
    ) => {
      const [status, state, detail] = await Promise.all([
        client.status() as Promise<unknown> as Promise<StatusResponse>,
        client.stateAll({ vertex: query.vertex }),
        query.detail === undefined
          ? Promise.resolve(null)
          : (client.vertex(query.detail.kind, query.detail.key) as Promise<VertexDetailResponse>),
      ]);
      return { status, state, detail };
    };
    const once = flags.key === undefined ? { vertex } : { vertex, detail: { kind: vertex, key: flags.key } };
    try {
      if (flags.json) {
        const { status, state, detail } = await fetchSnapshot(once);
        this.printJson({
          status,
          state: flags.show === undefined ? state : await client.stateAll({ vertex, show: flags.show }),
          ...(detail === null ? {} : { detail }),
        });
        return;
      }
      if (flags.once || flags.key !== undefined || !process.stdout.isTTY) {
        const { status, state, detail } = await fetchSnapshot(once);
        process.stdout.write(
          renderPlainFrame(status, state, {
            vertex,
            sort,
            ...(flags.show === undefined ? {} : { show: flags.show }),
            color: Boolean(process.stdout.isTTY),
            columns: process.stdout.columns || 100,
            ...(detail === null ? {} : { detail }),
          }),
        );
        return;
      }
      // Ink and React load only here, so every other command starts fast.
      const { runInspect } = await import('../src/tui/app.js');
      await runInspect({
        fetchSnapshot,
        intervalMs: flags.interval * 1000,
        vertex,
        sort,
        ...(flags.show === undefined ? {} : { show: flags.show }),
        daemon: client.describe,
      });
    } finally {
      client.close();
    }
  }
}
