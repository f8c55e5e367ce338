/**
 * What keeps one GraphQL request from exhausting the server: the request's shape is checked before
 * mercurius sees it, a document's cost (rows requested times fields, every alias counted) before it
 * runs, and the size of the answer before it is sent. An outside probe showed why: 1 000 aliases of
 * a 10 000-row query in one 80 KB POST took 4 GB and 80 s before this.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  type DocumentNode,
  GraphQLError,
  type GraphQLSchema,
  getNamedType,
  getNullableType,
  isLeafType,
  isListType,
} from 'graphql';
import { type ComplexityEstimator, getComplexity } from 'graphql-query-complexity';
import type { LimitCounters } from '../edge/limit-counters.ts';
import { ERRORS, type ErrorCode } from '../errors.ts';

/** Rows assumed for a list field without `limit` (symbols, feeds, rejection reasons). */
export const UNLIMITED_LIST_ROWS = 100;

/** The limits of server.graphql. */
export interface GraphqlLimits {
  maxCost: number;
  maxTokens: number;
  maxResponseBytes: number;
}

/** A GraphQL-shaped error body (`{data: null, errors: [...]}`) with the code's status. */
function refuse(reply: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  return reply.code(ERRORS[code].status).send({ data: null, errors: [{ message, extensions: { code } }] });
}

/**
 * Each scalar field costs 1; a list field costs its rows (`limit`, with the schema's default when
 * absent) times the cost of one row; any other field costs its selection.
 */
const rowsEstimator: ComplexityEstimator = ({ field, args, childComplexity }) => {
  const type = getNullableType(field.type);
  if (isListType(type)) {
    const rows = typeof args.limit === 'number' ? args.limit : UNLIMITED_LIST_ROWS;
    return rows * Math.max(1, childComplexity);
  }
  return isLeafType(getNamedType(field.type)) ? 1 : childComplexity;
};

/** The cost of a document under the rows estimator (every operation in it counted). */
export function documentCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | undefined,
): number {
  return getComplexity({ schema, query: document, variables: variables ?? {}, estimators: [rowsEstimator] });
}

/** The refusal of a document over the cost limit (or whose cost cannot be computed), or undefined. */
export function checkCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> | undefined,
  maxCost: number,
): GraphQLError | undefined {
  let cost: number;
  try {
    cost = documentCost(schema, document, variables);
  } catch (error) {
    return new GraphQLError(`the query's cost cannot be computed: ${(error as Error).message}`, {
      extensions: { code: 'query_too_costly' },
    });
  }
  if (cost <= maxCost) return undefined;
  return new GraphQLError(
    `the query would cost ${cost} (rows requested times fields, every alias counted), more than ` +
      `server.graphql.maxCost = ${maxCost}: ask for fewer rows, fields or aliases, or split it`,
    { extensions: { code: 'query_too_costly' } },
  );
}

/** True when the document holds a subscription, which only a WebSocket can carry. */
export function hasSubscription(document: DocumentNode): boolean {
  return document.definitions.some(
    (definition) => definition.kind === 'OperationDefinition' && definition.operation === 'subscription',
  );
}

function isWebSocketUpgrade(request: FastifyRequest): boolean {
  return request.headers.upgrade?.toLowerCase() === 'websocket';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A preHandler for `/graphql` over HTTP: `query` must be a string, `variables` an object and
 * `operationName` a string when given. Mercurius would take a number as a ready-parsed document and
 * fail inside graphql-js with a message that names its internals.
 */
export function checkGraphqlRequest(): (
  request: FastifyRequest,
  reply: FastifyReply,
) => Promise<FastifyReply | undefined> {
  return async (request, reply) => {
    if (isWebSocketUpgrade(request)) return undefined;
    const params = request.method === 'GET' ? request.query : request.body;
    // `content-type: application/graphql`: the body is the document itself.
    if (typeof params === 'string') return undefined;
    let problem: string | undefined;
    if (!isPlainObject(params)) {
      problem = 'the request must be {"query": "...", "variables"?: {...}, "operationName"?: "..."}';
    } else if (typeof params.query !== 'string') {
      problem = `"query" must be a string holding a GraphQL document, got ${params.query === undefined ? 'none' : typeof params.query}`;
    } else if (
      params.variables !== undefined &&
      params.variables !== null &&
      !isPlainObject(params.variables) &&
      !(request.method === 'GET' && typeof params.variables === 'string')
    ) {
      problem = '"variables" must be an object';
    } else if (
      params.operationName !== undefined &&
      params.operationName !== null &&
      typeof params.operationName !== 'string'
    ) {
      problem = '"operationName" must be a string';
    }
    if (problem === undefined) return undefined;
    return refuse(reply, 'bad_request', problem);
  };
}

/** An onSend hook for `/graphql`: an answer over `maxResponseBytes` is replaced by `response_too_large`. */
export function capResponse(
  maxResponseBytes: number,
  counters: LimitCounters,
): (request: FastifyRequest, reply: FastifyReply, payload: unknown) => Promise<unknown> {
  return async (_request, reply, payload) => {
    // Cheap first: a string cannot hold fewer bytes than characters, nor more than 3 per UTF-16 unit.
    if (typeof payload !== 'string' || payload.length * 3 <= maxResponseBytes) return payload;
    const bytes = Buffer.byteLength(payload);
    if (bytes <= maxResponseBytes) return payload;
    counters.count('graphql.maxResponseBytes');
    reply.code(ERRORS.response_too_large.status);
    return JSON.stringify({
      data: null,
      errors: [
        {
          message: `the answer has ${bytes} bytes, more than server.graphql.maxResponseBytes = ${maxResponseBytes}: ask for fewer rows or fields`,
          extensions: { code: 'response_too_large' },
        },
      ],
    });
  };
}

/** mercurius reports a document over `maxTokens` as a syntax error with this text. */
export function isTooManyTokens(message: string): boolean {
  return message.startsWith('Syntax Error: Document contains more that');
}
