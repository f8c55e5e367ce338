import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { FastifyInstance } from 'fastify';
import { buildTestServer, type Json } from '../../../test/support/serve.ts';
import { RATE_LIMIT_EXEMPT_PATHS } from '../edge/edge.ts';

let app: FastifyInstance;
let document: Json;

before(async () => {
  ({ app } = await buildTestServer());
  const response = await app.inject({ url: '/openapi.json' });
  assert.equal(response.statusCode, 200);
  document = response.json();
});

after(async () => {
  await app.close();
});

/** `/api/v1/latest/:symbol` as OpenAPI writes it: `/api/v1/latest/{symbol}`. */
function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{*}');
}

/** Documented operations: [path, method, operation]. */
function operations(): [string, string, Json][] {
  const found: [string, string, Json][] = [];
  for (const [path, item] of Object.entries<Json>(document.paths)) {
    for (const [method, operation] of Object.entries<Json>(item)) found.push([path, method, operation]);
  }
  return found;
}

interface Example {
  where: string;
  schema: object;
  value: unknown;
}

/** Every example in a schema, at any depth, with the schema it illustrates. */
function schemaExamples(schema: Json, where: string, into: Example[]): void {
  if (typeof schema !== 'object' || schema === null) return;
  if (Array.isArray(schema.examples)) {
    schema.examples.forEach((value: unknown, i: number) => {
      into.push({ where: `${where} examples[${i}]`, schema, value });
    });
  }
  if ('example' in schema) into.push({ where: `${where} example`, schema, value: schema.example });
  for (const [key, child] of Object.entries<Json>(schema.properties ?? {})) {
    schemaExamples(child, `${where}.${key}`, into);
  }
  if (schema.items !== undefined) schemaExamples(schema.items, `${where}[]`, into);
}

/** Every example of a media type or a parameter: `example`, `examples: {name: {value}}`, and in its schema. */
function holderExamples(holder: Json, where: string, into: Example[]): void {
  if ('example' in holder)
    into.push({ where: `${where} example`, schema: holder.schema, value: holder.example });
  for (const [name, example] of Object.entries<Json>(holder.examples ?? {})) {
    into.push({ where: `${where} examples.${name}`, schema: holder.schema, value: example.value });
  }
  schemaExamples(holder.schema, `${where} schema`, into);
}

function operationExamples(path: string, method: string, operation: Json): Example[] {
  const examples: Example[] = [];
  const where = `${method.toUpperCase()} ${path}`;
  for (const parameter of operation.parameters ?? []) {
    holderExamples(parameter, `${where} ${parameter.in} ${parameter.name}`, examples);
  }
  for (const [type, media] of Object.entries<Json>(operation.requestBody?.content ?? {})) {
    holderExamples(media, `${where} body ${type}`, examples);
  }
  for (const [status, response] of Object.entries<Json>(operation.responses ?? {})) {
    for (const [type, media] of Object.entries<Json>(response.content ?? {})) {
      holderExamples(media, `${where} ${status} ${type}`, examples);
    }
  }
  return examples;
}

test('the document is OpenAPI 3.1 and /docs serves the browsable page with its own assets', async () => {
  assert.equal(document.openapi, '3.1.0');
  assert.equal(document.info.title, 'Streamlines');
  const docs = await app.inject({ url: '/docs/' });
  assert.equal(docs.statusCode, 200);
  assert.match(String(docs.headers['content-type']), /text\/html/);
  // Offline: the page's script is served by this server, not a CDN.
  const script = docs.body.match(/src="\.?\/?(static\/[^"]+\.js)"/);
  assert.ok(script, 'the docs page loads a script from ./static');
  const asset = await app.inject({ url: `/docs/${script[1]}` });
  assert.equal(asset.statusCode, 200);
  assert.ok(asset.body.length > 1_000);
});

test('every registered route is described, with a summary, a description and its error responses', () => {
  const visible = app.registeredRoutes.filter((route) => !route.hidden && route.method !== 'HEAD');
  assert.ok(visible.length >= 10, `only ${visible.length} routes registered`);
  const problems: string[] = [];
  for (const route of visible) {
    const name = `${route.method} ${route.url}`;
    const operation = document.paths[openApiPath(route.url)]?.[route.method.toLowerCase()];
    if (operation === undefined) {
      problems.push(`${name} is not in the document`);
      continue;
    }
    if (!operation.summary) problems.push(`${name} has no summary`);
    if (!operation.description) problems.push(`${name} has no description`);
    const statuses = Object.keys(operation.responses);
    if (!statuses.some((status) => status.startsWith('2') || status === '101')) {
      problems.push(`${name} has no success response`);
    }
    // Any route can fail, and any but the probes be rate limited.
    for (const status of RATE_LIMIT_EXEMPT_PATHS.has(route.url) ? ['500'] : ['429', '500']) {
      if (!statuses.includes(status)) problems.push(`${name} does not describe ${status}`);
    }
    for (const status of statuses.filter((status) => /^[45]/.test(status))) {
      const schema = operation.responses[status].content?.['application/json']?.schema;
      if (schema?.properties?.error?.required?.join() !== 'code,message') {
        problems.push(`${name} ${status} is not the {error: {code, message}} shape`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

test('every operation has examples, and every example validates against its schema (JSON Schema 2020-12)', () => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const problems: string[] = [];
  let checked = 0;
  for (const [path, method, operation] of operations()) {
    const examples = operationExamples(path, method, operation);
    // The error examples the edge adds to every route do not count: the route must show its own.
    if (!examples.some(({ where }) => !/ [45]\d\d /.test(where))) {
      problems.push(`${method.toUpperCase()} ${path} has no example of its own`);
    }
    for (const { where, schema, value } of examples) {
      const validate = ajv.compile(schema);
      if (!validate(value)) problems.push(`${where}: ${ajv.errorsText(validate.errors)}`);
      checked++;
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(checked >= 50, `only ${checked} examples checked`);
});

test('a wrong example would be caught: the validator is not vacuous', () => {
  const ajv = new Ajv2020({ strict: false });
  const candles = document.paths['/api/v1/candles/{symbol}'].get.responses['200'].content['application/json'];
  const good: Json = candles.example ?? Object.values<Json>(candles.examples)[0].value;
  const validate = ajv.compile<Json>(candles.schema);
  assert.ok(validate(structuredClone(good)));
  assert.ok(!validate({ ...good, candles: [{ ...good.candles[0], ts: 'noon' }] }));
  // 2020-12 `type: [number, null]` is honoured, not read as draft-04.
  assert.ok(!validate({ ...good, candles: [{ ...good.candles[0], vwap: 'n/a' }] }));
});
