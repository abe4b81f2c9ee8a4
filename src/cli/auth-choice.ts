/**
 * Who may use the daemon's HTTP API: the rule of `serve --token` / `--no-auth` (docs/api.md
 * "Authentication"). Serving without authentication is never an accident:
 *
 * - an empty token (`--token ""`, `CUEACCT_TOKEN=""`) is a configuration error, not "no auth";
 * - `--token` with `--no-auth` is a contradiction;
 * - with neither, a loopback address or a Unix socket serves without auth (only local users
 *   reach it), while any other address refuses to start until the choice is made;
 * - `--no-auth` on an address that is not loopback serves, with a warning.
 */
import net from 'node:net';

import { usageError } from './errors.js';

export type ListenChoice = { host: string; port: number } | { socket: string };

export interface AuthInput {
  /** `--token` as oclif parsed it (from the flag or a non-empty CUEACCT_TOKEN). */
  token: string | undefined;
  /** The raw CUEACCT_TOKEN: oclif drops an empty variable, which must still be an error. */
  tokenEnv: string | undefined;
  noAuth: boolean;
  listen: ListenChoice;
}

export interface AuthChoice {
  /** The bearer token, or undefined to serve without authentication. */
  token: string | undefined;
  /** One line for the log at warn level, when serving without auth where others may reach it. */
  warning?: string;
}

export function chooseAuth(input: AuthInput): AuthChoice {
  const token = input.token ?? input.tokenEnv;
  if (token !== undefined && token.trim() === '') {
    throw usageError(
      'the token is empty (--token or CUEACCT_TOKEN): give a token, or pass --no-auth to serve without authentication',
    );
  }
  if (token !== undefined && input.noAuth) {
    throw usageError('--no-auth and a token (--token or CUEACCT_TOKEN) exclude each other');
  }
  if (token !== undefined) return { token };
  if ('socket' in input.listen || isLocal(input.listen)) return { token: undefined };
  const where = `${input.listen.host}:${input.listen.port}`;
  if (!input.noAuth) {
    throw usageError(
      `${where} is not a loopback address: set CUEACCT_TOKEN (or --token) for bearer auth, or pass --no-auth to serve without authentication`,
    );
  }
  return {
    token: undefined,
    warning: `serving WITHOUT authentication on ${where} (--no-auth): anyone who reaches this address can book and roll back bookings`,
  };
}

/** A Unix socket, `localhost`, 127.0.0.0/8 or ::1 (IPv4-mapped too). */
export function isLocal(listen: ListenChoice): boolean {
  if ('socket' in listen) return true;
  const host = listen.host.toLowerCase();
  if (host === 'localhost') return true;
  if (net.isIPv4(host)) return host.startsWith('127.');
  if (net.isIPv6(host)) return host === '::1' || /^::ffff:127\./.test(host);
  return false;
}
