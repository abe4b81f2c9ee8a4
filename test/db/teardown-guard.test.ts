/** The postgres.js teardown guard lets exactly its two errors pass and crashes on anything else. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const GUARD = pathToFileURL(
  path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../build/src/db/teardown-guard.js'),
).href;

/** Run `body` in a fresh node with the guard installed; resolves with its exit code and output. */
async function withGuard(body: string): Promise<{ code: number; stdout: string }> {
  const script = `
    const { guardPostgresTeardown } = await import(${JSON.stringify(GUARD)});
    guardPostgresTeardown((kind) => console.log('reported ' + kind));
    ${body}
    setTimeout(() => console.log('still alive'), 50);`;
  try {
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
    return { code: 0, stdout };
  } catch (error) {
    const e = error as { code: number; stdout: string };
    return { code: e.code, stdout: e.stdout };
  }
}

describe('guardPostgresTeardown', () => {
  it('reports an unhandled rejection of a terminated connection and keeps the process alive', async () => {
    const r = await withGuard(
      `Promise.reject(Object.assign(new Error('terminating connection'), { code: '57P01' }));`,
    );
    expect(r).toEqual({ code: 0, stdout: 'reported rejection\nstill alive\n' });
  });

  it('lets any other unhandled rejection crash the process', async () => {
    const r = await withGuard(`Promise.reject(Object.assign(new Error('boom'), { code: '42P01' }));`);
    expect(r.code).not.toBe(0);
    expect(r.stdout).not.toContain('still alive');
  });

  it("reports postgres.js's write on a closed socket and keeps the process alive", async () => {
    const r = await withGuard(`
      const error = new TypeError("Cannot read properties of null (reading 'write')");
      error.stack += '\\n    at write (/app/node_modules/postgres/src/connection.js:1:1)';
      setTimeout(() => { throw error; });`);
    expect(r).toEqual({ code: 0, stdout: 'reported null_write\nstill alive\n' });
  });

  it('lets an uncaught exception that is not a postgres.js null-socket write crash the process', async () => {
    const r = await withGuard(
      `setTimeout(() => { throw new TypeError("Cannot read properties of null (reading 'write')"); });`,
    );
    expect(r.code).toBe(70);
    expect(r.stdout).not.toContain('still alive');
  });
});
