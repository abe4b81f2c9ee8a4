/**
 * A yes/no question on the terminal (question on stderr, so stdout stays clean for --json).
 * Undefined when stdin is not a terminal: scripts must say --yes instead of piping an answer.
 */
import { createInterface } from 'node:readline/promises';

export async function askYesNo(question: string): Promise<boolean | undefined> {
  if (!process.stdin.isTTY) return undefined;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(question);
    return /^\s*y(es)?\s*$/i.test(answer);
  } finally {
    rl.close();
  }
}
