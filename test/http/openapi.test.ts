/**
 * The OpenAPI contract (docs/openapi.json): it is current (regenerate with `npm run openapi`),
 * every JSON example of docs/api.md validates against the operation it documents, and the
 * live answers of every endpoint of the real daemon validate against it (ajv 8, draft 2020-12).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiText } from '../../src/http/openapi.js';
import { createTestDatabase, type TestDatabase } from '../support/db.js';
import { api, startDaemon, waitReady, type Daemon } from '../support/daemon.js';
import { bookingFor, createSmallFarm, type SmallFarm } from '../support/service.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const DOC_PATH = path.join(ROOT, 'docs/openapi.json');
const API_MD = readFileSync(path.join(ROOT, 'docs/api.md'), 'utf8');
const VERSION = (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

type Json = Record<string, any>;
const doc = JSON.parse(readFileSync(DOC_PATH, 'utf8')) as Json;

// ajv-formats is CommonJS with a default export.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (
  ajv: Ajv2020,
) => Ajv2020;
const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
ajv.addSchema({ ...doc, $id: 'openapi' });

function validator(ref: string) {
  return ajv.getSchema(`openapi${ref}`) ?? ajv.compile({ $ref: `openapi${ref}` });
}

/** Every response schema of an operation, by status. */
function responseSchemas(pathName: string, method: string): Map<string, string> {
  const op = doc.paths[pathName]?.[method.toLowerCase()] as Json | undefined;
  if (op === undefined) throw new Error(`no ${method} ${pathName} in docs/openapi.json`);
  const out = new Map<string, string>();
  for (const [status, response] of Object.entries(op.responses as Json)) {
    const ref = (response as Json).content?.['application/json']?.schema?.$ref as string | undefined;
    if (ref !== undefined) out.set(status, `#${ref.slice(1)}`);
  }
  return out;
}

function requestSchema(pathName: string, method: string): string | undefined {
  const ref = doc.paths[pathName]?.[method.toLowerCase()]?.requestBody?.content?.['application/json']?.schema
    ?.$ref as string | undefined;
  return ref === undefined ? undefined : `#${ref.slice(1)}`;
}

function check(ref: string, value: unknown): string | null {
  const validate = validator(ref.replace(/^#/, '#'));
  return validate(value) ? null : ajv.errorsText(validate.errors);
}

interface Example {
  heading: string;
  operations: { method: string; path: string }[];
  value: unknown;
  /** `either`: an inline span, which may show a body or an answer. */
  kind: 'answer' | 'request' | 'either';
}

/**
 * The JSON examples of docs/api.md under each `### \`METHOD /path\`` heading: fenced ```json
 * blocks and inline `{…}` spans (answers), and `-d '…'` bodies of curl lines (requests).
 */
function examples(): Example[] {
  const out: Example[] = [];
  let heading = '';
  let operations: Example['operations'] = [];
  const lines = API_MD.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('#')) {
      heading = line;
      operations = [];
      if (line.startsWith('### ')) {
        const method = /`(GET|POST) ([^`]+)`/.exec(line)?.[1];
        for (const m of line.matchAll(/`(?:(GET|POST) )?(\/[^`\s]*)`/g)) {
          operations.push({ method: m[1] ?? method ?? 'GET', path: m[2]! });
        }
      }
      continue;
    }
    if (operations.length === 0) continue;
    if (line.trim() === '```json') {
      const end = lines.indexOf('```', i + 1);
      out.push({
        heading,
        operations,
        value: JSON.parse(lines.slice(i + 1, end).join('\n')),
        kind: 'answer',
      });
      i = end;
      continue;
    }
    if (line.includes("-d '")) {
      let text = line.slice(line.indexOf("-d '") + 4);
      while (!text.includes("'")) text += `\n${lines[++i]!}`;
      out.push({ heading, operations, value: JSON.parse(text.slice(0, text.indexOf("'"))), kind: 'request' });
      continue;
    }
    for (const m of line.matchAll(/`(\{[^`]*\})`/g)) {
      let value: unknown;
      try {
        value = JSON.parse(m[1]!);
      } catch {
        continue; // `{booking}`-style shorthand, not JSON
      }
      out.push({ heading, operations, value, kind: 'either' });
    }
  }
  return out;
}

describe('OpenAPI document', () => {
  it('is current: docs/openapi.json is what `npm run openapi` writes', () => {
    expect(readFileSync(DOC_PATH, 'utf8'), 'docs/openapi.json is stale: run `npm run openapi`').toBe(
      openApiText(VERSION),
    );
  });

  it('is valid OpenAPI 3.1 whose schemas compile under draft 2020-12', () => {
    expect(doc.openapi).toBe('3.1.0');
    for (const name of Object.keys(doc.components.schemas as Json)) {
      expect(() => validator(`#/components/schemas/${name}`)).not.toThrow();
    }
  });

  it('accepts every JSON example of docs/api.md under the operation it documents', () => {
    const found = examples();
    expect(found.length).toBeGreaterThanOrEqual(12);
    for (const example of found) {
      const requests = example.operations
        .map((op) => requestSchema(op.path, op.method))
        .filter((r) => r !== undefined);
      const refs =
        example.kind === 'request'
          ? requests
          : example.operations.flatMap((op) => [
              ...(example.kind === 'either' ? requests : []),
              ...responseSchemas(op.path, op.method).values(),
              // The batch section also shows single entries of `results`.
              ...(op.path === '/v1/batch' ? ['#/components/schemas/BatchEntry'] : []),
            ]);
      expect(
        refs.length,
        `${example.heading}: no schema for ${JSON.stringify(example.value)}`,
      ).toBeGreaterThan(0);
      const errors = refs.map((ref) => check(ref, example.value));
      expect(
        errors.some((e) => e === null),
        `${example.heading}: ${JSON.stringify(example.value)} matches none of ${refs.join(', ')}: ${errors.join(' | ')}`,
      ).toBe(true);
    }
  });

  it('rejects an answer that breaks the contract (the check can fail)', () => {
    expect(check('#/components/schemas/BookResponse', { result: 'applied', booking: 'x' })).not.toBeNull();
    expect(
      check('#/components/schemas/BookRequest', {
        show: 's',
        alloc: 'a',
        folder: 'f',
        job: 'j',
        cores: 1.5,
        gpus: 0,
      }),
    ).not.toBeNull();
  });
});

describe('live answers of the daemon', () => {
  let db: TestDatabase;
  let farm: SmallFarm;
  let daemon: Daemon;

  beforeAll(async () => {
    db = await createTestDatabase();
    farm = await createSmallFarm(db.sql, { managed: true, burst: 10, jobCores: 8, showName: 'openapi-show' });
    daemon = await startDaemon({ databaseUrl: db.url });
    await waitReady(daemon);
  });
  afterAll(async () => {
    await daemon?.stop('SIGKILL');
    await db?.drop();
  });

  async function expectValid(method: 'GET' | 'POST', pathName: string, body?: unknown): Promise<number> {
    const answer = await api(daemon, method, pathName, body);
    const ref = responseSchemas(pathName.split('?')[0]!, method).get(String(answer.status));
    expect(
      ref,
      `${method} ${pathName} answered ${answer.status}, which the document does not list`,
    ).toBeDefined();
    expect(
      check(ref!, answer.body),
      `${method} ${pathName} → ${answer.status} ${JSON.stringify(answer.body)}`,
    ).toBeNull();
    return answer.status;
  }

  it('validates every endpoint, every documented status it can reach', async () => {
    const applied = await api(daemon, 'POST', '/v1/book', bookingFor(farm, 4));
    expect(applied.status).toBe(200);
    expect(check(responseSchemas('/v1/book', 'POST').get('200')!, applied.body)).toBeNull();
    expect(await expectValid('POST', '/v1/book', bookingFor(farm, 9))).toBe(409);
    expect(await expectValid('POST', '/v1/book', { ...bookingFor(farm, 1), show: 'not-managed' })).toBe(200);
    expect(await expectValid('POST', '/v1/book', { ...bookingFor(farm, 1), cores: 1.5 })).toBe(400);
    const booking = (applied.body as { booking: string }).booking;
    expect(await expectValid('POST', '/v1/confirm', { booking })).toBe(200);
    expect(await expectValid('POST', '/v1/confirm', { booking })).toBe(404);
    expect(await expectValid('POST', '/v1/rollback', { booking: 'no-such-id' })).toBe(404);
    const second = await api(daemon, 'POST', '/v1/book', bookingFor(farm, 1));
    expect(
      await expectValid('POST', '/v1/rollback', { booking: (second.body as { booking: string }).booking }),
    ).toBe(200);
    expect(
      await expectValid('POST', '/v1/batch', {
        ops: [
          { op: 'book', ...bookingFor(farm, 1) },
          { op: 'book', ...bookingFor(farm, 50) },
          { op: 'confirm', booking: 'no-such-id' },
        ],
      }),
    ).toBe(200);
    expect(await expectValid('POST', '/v1/batch', { ops: [{ op: 'boook' }] })).toBe(400);
    expect(await expectValid('GET', '/v1/state')).toBe(200);
    expect(await expectValid('GET', '/v1/state?vertex=host')).toBe(400);
    expect(await expectValid('GET', '/v1/status')).toBe(200);
    for (const action of ['recompute', 'reseed', 'refresh-shows']) {
      expect(await expectValid('POST', `/v1/admin/${action}`)).toBe(200);
    }
    expect(await expectValid('GET', '/healthz')).toBe(200);
    expect(await expectValid('GET', '/readyz')).toBe(200);
    const served = await api(daemon, 'GET', '/v1/openapi.json');
    expect(served.status).toBe(200);
    expect(served.body).toEqual(doc);
  });
});
