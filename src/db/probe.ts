/**
 * LISTEN/NOTIFY primitives of `cueacct notify-test`: a listening session and single NOTIFYs,
 * each in its own transaction (as Cuebot sends them: one per committed write).
 */
import type { Sql } from 'postgres';

export interface ListeningSession {
  /** Stop listening (closes the dedicated LISTEN connection). */
  close(): Promise<void>;
}

/**
 * LISTEN on `channels` on the pool's dedicated listen connection (postgres.js opens one
 * apart from the query connections); resolves once every LISTEN is active.
 */
export async function listenOn(
  sql: Sql,
  channels: readonly string[],
  onNotify: (channel: string, payload: string) => void,
): Promise<ListeningSession> {
  const subscriptions = await Promise.all(
    channels.map((channel) => sql.listen(channel, (payload) => onNotify(channel, payload))),
  );
  return {
    close: async () => {
      await Promise.all(subscriptions.map((s) => s.unlisten()));
    },
  };
}

/** `SELECT pg_notify(channel, payload)` in its own (autocommit) transaction. */
export async function sendNotify(sql: Sql, channel: string, payload: string): Promise<void> {
  await sql`SELECT pg_notify(${channel}, ${payload})`;
}
