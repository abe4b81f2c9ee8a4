/**
 * Test support: build the real CLI once per test file into a private directory laid out like the
 * package (package.json, bin/run.js, build/, node_modules → the project's), and run it as a child
 * process. A private build keeps these tests independent of `build/` (which other work may be
 * rewriting) and of type errors in files the CLI does not import.
 */
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface BuiltCli {
  dir: string;
  bin: string;
  cleanup(): void;
}

export function buildCli(): BuiltCli {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cueacct-cli-test-'));
  const tsc = path.join(projectRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const tsconfig = path.join(projectRoot, 'test', 'cli', 'build-cli.tsconfig.json');
  execFileSync(process.execPath, [tsc, '-p', tsconfig, '--outDir', path.join(dir, 'build')], {
    cwd: projectRoot,
    stdio: 'pipe',
  });
  mkdirSync(path.join(dir, 'bin'));
  copyFileSync(path.join(projectRoot, 'bin', 'run.js'), path.join(dir, 'bin', 'run.js'));
  copyFileSync(path.join(projectRoot, 'package.json'), path.join(dir, 'package.json'));
  symlinkSync(path.join(projectRoot, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return {
    dir,
    bin: path.join(dir, 'bin', 'run.js'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment without anything that would change the CLI's behaviour. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(CUEACCT_|PG|DATABASE_URL$|NODE_ENV$|OCLIF_|DEBUG$|VITEST)/.test(key)) continue;
    env[key] = value;
  }
  return { ...env, ...extra };
}

/** Run `node <bin> ...args` from a neutral working directory. */
export function runBuiltCli(
  bin: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { cwd: options.cwd ?? os.tmpdir(), env: cleanEnv(options.env), timeout: 20_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
