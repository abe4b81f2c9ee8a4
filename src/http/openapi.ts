/**
 * The OpenAPI 3.1 document of the daemon's HTTP API, generated from the zod schemas the server
 * validates requests with (./schemas.ts) and the answer schemas (src/api/schemas.ts) with
 * zod 4's own `z.toJSONSchema` (JSON Schema draft 2020-12, the dialect of OpenAPI 3.1): there
 * is no second, hand-written copy of the shapes. Served at `GET /v1/openapi.json`; written to
 * docs/openapi.json by `npm run openapi`.
 */
import { z } from 'zod';
import {
  adminDoneSchema,
  batchEntrySchema,
  batchResponseSchema,
  bookRefusalSchema,
  bookResponseSchema,
  confirmResponseSchema,
  drainShowResponseSchema,
  drainTimeoutSchema,
  errorResponseSchema,
  healthSchema,
  rollbackResponseSchema,
  stateResponseSchema,
  statusResponseSchema,
  undrainShowResponseSchema,
  vertexDetailResponseSchema,
} from '../api/schemas.js';
import { STATE_PAGE_MAX } from '../service/types.js';
import { DRAIN_REQUEST_SCHEMAS, MAX_ID_LENGTH, REQUEST_SCHEMAS } from './schemas.js';

const COMPONENTS: Record<string, z.ZodType> = {
  ...REQUEST_SCHEMAS,
  ...DRAIN_REQUEST_SCHEMAS,
  BookResponse: bookResponseSchema,
  BookRefusal: bookRefusalSchema,
  DrainShowResponse: drainShowResponseSchema,
  DrainTimeout: drainTimeoutSchema,
  UndrainShowResponse: undrainShowResponseSchema,
  VertexDetailResponse: vertexDetailResponseSchema,
  // The book endpoint's 409 and 503 bodies: a cap/drain answer or a refusal; not ready or resolving.
  BookConflict: z.union([bookResponseSchema, bookRefusalSchema]),
  BookUnavailable: z.union([errorResponseSchema, bookRefusalSchema]),
  ConfirmResponse: confirmResponseSchema,
  RollbackResponse: rollbackResponseSchema,
  BatchResponse: batchResponseSchema,
  BatchEntry: batchEntrySchema,
  StateResponse: stateResponseSchema,
  StatusResponse: statusResponseSchema,
  AdminDone: adminDoneSchema,
  Health: healthSchema,
  Error: errorResponseSchema,
};

type Json = Record<string, unknown>;

function jsonSchema(schema: z.ZodType): Json {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'output',
  }) as Json;
  return rest;
}

const ref = (name: keyof typeof COMPONENTS | string): Json => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json, description: string): Json => ({
  description,
  content: { 'application/json': { schema } },
});
const error = (description: string): Json => json(ref('Error'), description);
const body = (name: string): Json => ({
  required: true,
  content: { 'application/json': { schema: ref(name) } },
});

const COMMON = {
  '400': error('The body or query does not validate; `message` names the field.'),
  '401': error('Token required and missing or wrong.'),
  '413': error('Body over 1 MiB.'),
  '415': error('A body whose Content-Type is not JSON.'),
};

/** The document; `version` is the daemon's. */
export function openApiDocument(version: string): Json {
  const components: Json = {};
  for (const [name, schema] of Object.entries(COMPONENTS)) components[name] = jsonSchema(schema);
  const admin = (operationId: string, summary: string): Json => ({
    post: {
      summary,
      operationId,
      requestBody: { required: false, content: { 'application/json': { schema: ref('AdminRequest') } } },
      responses: {
        '200': json(ref('AdminDone'), 'The pass ran to the end.'),
        '400': COMMON['400'],
        '401': COMMON['401'],
        '500': error('The pass failed (`pass_failed`).'),
      },
    },
  });
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'cueacct daemon API',
      version,
      description:
        'Resource accounting for an OpenCue farm: book, confirm, rollback against hard caps. See docs/api.md.',
    },
    servers: [{ url: 'http://127.0.0.1:7878' }],
    security: [{ bearer: [] }, {}],
    paths: {
      '/v1/book': {
        post: {
          summary: 'Check one booking against every cap and apply it',
          operationId: 'book',
          requestBody: body('BookRequest'),
          responses: {
            '200': json(
              ref('BookResponse'),
              '`applied` (with a booking id, its lease and insert deadline) or `not_managed`.',
            ),
            '404': json(
              ref('BookRefusal'),
              '`unknown_job`, `unknown_folder` or `unknown_subscription`: no such key in a managed show; nothing changed.',
            ),
            '409': {
              description:
                '`limit_exceeded` (a cap refused) or `show_draining` (a flip to Cuebot is in progress), a BookResponse; or `wrong_folder` / `wrong_show` (the path disagrees with the job), a BookRefusal naming the right value. Nothing changed.',
              content: { 'application/json': { schema: ref('BookConflict') } },
            },
            '503': {
              description:
                '`not_ready` (not accepting bookings) or `resolving` (a new key is still being read; retry after Retry-After). Nothing changed.',
              content: { 'application/json': { schema: ref('BookUnavailable') } },
            },
            ...COMMON,
          },
        },
      },
      '/v1/confirm': {
        post: {
          summary: 'The proc row committed: end the booking',
          operationId: 'confirm',
          requestBody: body('SettleRequest'),
          responses: {
            '200': json(ref('ConfirmResponse'), '`confirmed`.'),
            '404': json(ref('ConfirmResponse'), '`unknown_booking` or `lease_expired`.'),
            ...COMMON,
          },
        },
      },
      '/v1/rollback': {
        post: {
          summary: 'Nothing was inserted: undo the booking',
          operationId: 'rollback',
          requestBody: body('SettleRequest'),
          responses: {
            '200': json(ref('RollbackResponse'), '`rolled_back`.'),
            '404': json(ref('RollbackResponse'), '`unknown_booking` or `lease_expired`.'),
            ...COMMON,
          },
        },
      },
      '/v1/batch': {
        post: {
          summary: 'Up to 10,000 book/confirm/rollback ops in order, one answer each',
          operationId: 'batch',
          requestBody: body('BatchRequest'),
          responses: { '200': json(ref('BatchResponse'), 'One entry per op, in order.'), ...COMMON },
        },
      },
      '/v1/state': {
        get: {
          summary: 'Counters, pending parts and caps per vertex',
          operationId: 'state',
          parameters: [
            {
              name: 'vertex',
              in: 'query',
              schema: { type: 'string', enum: ['subscription', 'folder', 'job'] },
            },
            { name: 'show', in: 'query', schema: { type: 'string', minLength: 1, maxLength: MAX_ID_LENGTH } },
            { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: STATE_PAGE_MAX } },
            { name: 'cursor', in: 'query', schema: { type: 'string', minLength: 1, maxLength: 64 } },
            { name: 'top', in: 'query', schema: { type: 'integer', minimum: 1, maximum: STATE_PAGE_MAX } },
            {
              name: 'sort',
              in: 'query',
              schema: { type: 'string', enum: ['utilization', 'name', 'cores', 'blocked'] },
            },
          ],
          responses: {
            '200': json(ref('StateResponse'), 'The vertices.'),
            '400': COMMON['400'],
            '401': COMMON['401'],
          },
        },
      },
      '/v1/vertex': {
        get: {
          summary: 'One vertex, the caps in its path, the binding one and its recent history',
          operationId: 'vertex',
          parameters: [
            {
              name: 'kind',
              in: 'query',
              required: true,
              schema: { type: 'string', enum: ['subscription', 'folder', 'job'] },
            },
            {
              name: 'key',
              in: 'query',
              required: true,
              schema: { type: 'string', minLength: 1, maxLength: 2 * MAX_ID_LENGTH + 1 },
            },
          ],
          responses: {
            '200': json(ref('VertexDetailResponse'), 'The vertex and its path.'),
            '400': COMMON['400'],
            '401': COMMON['401'],
            '404': error('No such vertex in a managed show.'),
          },
        },
      },
      '/v1/status': {
        get: {
          summary: 'Readiness, lock, listener, passes, counters',
          operationId: 'status',
          responses: { '200': json(ref('StatusResponse'), 'The status.'), '401': COMMON['401'] },
        },
      },
      '/v1/openapi.json': {
        get: {
          summary: 'This document',
          operationId: 'openapi',
          responses: {
            '200': { description: 'The OpenAPI 3.1 document.', content: { 'application/json': {} } },
          },
        },
      },
      '/v1/admin/recompute': admin('adminRecompute', 'Run a recompute pass now'),
      '/v1/admin/reseed': admin('adminReseed', 'Run a limit reseed now'),
      '/v1/admin/refresh-shows': admin('adminRefreshShows', 'Refresh the managed shows now'),
      '/v1/admin/drain-show': {
        post: {
          summary:
            'Phase one of a flip to Cuebot: refuse new bookings of a show and wait until none is in flight',
          operationId: 'drainShow',
          requestBody: body('DrainShowRequest'),
          responses: {
            '200': json(ref('DrainShowResponse'), '`drained`: nothing of the show is in flight.'),
            '409': json(
              ref('DrainTimeout'),
              '`drain_timeout`: bookings still in flight at the timeout; the drain is lifted.',
            ),
            ...COMMON,
          },
        },
      },
      '/v1/admin/undrain-show': {
        post: {
          summary: 'Lift a drain: bookings of the show are accepted again',
          operationId: 'undrainShow',
          requestBody: body('UndrainShowRequest'),
          responses: { '200': json(ref('UndrainShowResponse'), '`lifted` or `not_draining`.'), ...COMMON },
        },
      },
      '/healthz': {
        get: {
          summary: 'Liveness (never needs the token)',
          operationId: 'healthz',
          security: [],
          responses: { '200': json(ref('Health'), '`{"status":"ok"}`.') },
        },
      },
      '/readyz': {
        get: {
          summary: 'Readiness: seeded and holding the N=1 lock',
          operationId: 'readyz',
          responses: {
            '200': json(ref('Health'), '`{"status":"ready"}`.'),
            '401': COMMON['401'],
            '503': error('`not_ready`.'),
          },
        },
      },
    },
    components: {
      schemas: components,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    },
  };
}

/** The document as written to docs/openapi.json (stable key order, 2-space indent, final newline). */
export function openApiText(version: string): string {
  return `${JSON.stringify(openApiDocument(version), null, 2)}\n`;
}
