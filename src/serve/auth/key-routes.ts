/** `/api/v1/admin/keys`: manage API keys while the server runs (the CLI needs it stopped). */
import type { FastifyPluginAsync } from 'fastify';
import type { Store } from '../../store/store.ts';
import { ApiError } from '../errors.ts';
import { errorResponses, errorSchema } from '../schemas.ts';
import { createApiKey, KeyInputError, type KeyVerifier, MAX_KEY_NAME_LENGTH, ROLES } from './keys.ts';
import { requireRole } from './require-role.ts';

export interface KeyRoutesOptions {
  store: Store;
  verifier: KeyVerifier;
  /** Closes the live connections opened with a key, once it is revoked. */
  dropConnections: (keyId: string) => void;
}

const EXAMPLE_KEY = {
  id: '3f9a0c1b2d4e5f60',
  name: 'dashboard',
  role: 'read',
  createdAt: 1_700_000_000_000,
  revokedAt: null,
} as const;

const keyRecordSchema = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'Public id of the key: the part after `sl_` in the key.' },
    name: { type: 'string', description: 'Who or what uses the key.' },
    role: { type: 'string', enum: ROLES },
    createdAt: { type: 'integer', description: 'ms since the epoch.' },
    revokedAt: { type: ['integer', 'null'], description: 'ms since the epoch; null while active.' },
  },
  required: ['id', 'name', 'role', 'createdAt', 'revokedAt'],
} as const;

const notFoundResponse = {
  ...errorSchema,
  description: 'not_found: no active key has that id (unknown, or already revoked).',
  examples: [{ error: { code: 'not_found', message: 'no active key with id "3f9a0c1b2d4e5f60"' } }],
};

const security = [{ apiKey: [] }];

const createSchema = {
  summary: 'Create an API key',
  description:
    'Creates a key and returns it in `key`: this is the only time it is shown; only its hash is stored. ' +
    'Needs an `admin` key.',
  tags: ['pipeline'],
  security,
  body: {
    type: 'object',
    properties: {
      name: { type: 'string', minLength: 1, maxLength: MAX_KEY_NAME_LENGTH },
      role: { type: 'string', enum: ROLES },
    },
    required: ['name', 'role'],
    examples: [{ name: 'dashboard', role: 'read' }],
  },
  response: {
    201: {
      description: 'The new key. Send it as `Authorization: Bearer KEY`.',
      type: 'object',
      properties: {
        id: keyRecordSchema.properties.id,
        name: keyRecordSchema.properties.name,
        role: keyRecordSchema.properties.role,
        createdAt: keyRecordSchema.properties.createdAt,
        key: { type: 'string', description: 'The key: `sl_<id>_<secret>`. Store it now.' },
      },
      required: ['id', 'name', 'role', 'createdAt', 'key'],
      examples: [
        {
          id: EXAMPLE_KEY.id,
          name: 'dashboard',
          role: 'read',
          createdAt: EXAMPLE_KEY.createdAt,
          key: `sl_${EXAMPLE_KEY.id}_${'A'.repeat(43)}`,
        },
      ],
    },
    ...errorResponses(400, 401, 403),
  },
};

const listSchema = {
  summary: 'List API keys',
  description: 'Every key, revoked ones included, oldest first; never the key itself. Needs an `admin` key.',
  tags: ['pipeline'],
  security,
  response: {
    200: {
      description: 'The keys.',
      type: 'object',
      properties: { keys: { type: 'array', items: keyRecordSchema } },
      required: ['keys'],
      examples: [{ keys: [EXAMPLE_KEY] }],
    },
    ...errorResponses(401, 403),
  },
};

const revokeSchema = {
  summary: 'Revoke an API key',
  description:
    'Revokes the key at once on this server, and closes the WebSocket connections opened with it. ' +
    'Needs an `admin` key.',
  tags: ['pipeline'],
  security,
  params: {
    type: 'object',
    properties: { id: { type: 'string', examples: [EXAMPLE_KEY.id] } },
    required: ['id'],
  },
  response: {
    200: {
      description: 'The key is revoked.',
      type: 'object',
      properties: { id: { type: 'string' }, revoked: { type: 'boolean' } },
      required: ['id', 'revoked'],
      examples: [{ id: EXAMPLE_KEY.id, revoked: true }],
    },
    ...errorResponses(401, 403),
    404: notFoundResponse,
  },
};

/** The encapsulated plugin serving the key admin routes; every one needs an `admin` key. */
export const keyRoutes: FastifyPluginAsync<KeyRoutesOptions> = async (
  app,
  { store, verifier, dropConnections },
) => {
  const preHandler = requireRole('admin');

  // attachValidation: the body schema documents the route; validateKeyInput gives the messages.
  app.post(
    '/api/v1/admin/keys',
    { schema: createSchema, preHandler, attachValidation: true },
    async (request, reply) => {
      const body = (typeof request.body === 'object' && request.body !== null ? request.body : {}) as {
        name?: unknown;
        role?: unknown;
      };
      try {
        const { record, key } = await createApiKey(store, { name: body.name, role: body.role });
        reply.code(201).header('cache-control', 'no-store');
        return { id: record.id, name: record.name, role: record.role, createdAt: record.createdAt, key };
      } catch (error) {
        if (error instanceof KeyInputError) throw new ApiError('invalid_parameter', error.message);
        throw error;
      }
    },
  );

  app.get('/api/v1/admin/keys', { schema: listSchema, preHandler }, async () => ({
    keys: await store.listKeys(),
  }));

  app.delete<{ Params: { id: string } }>(
    '/api/v1/admin/keys/:id',
    { schema: revokeSchema, preHandler },
    async (request) => {
      const { id } = request.params;
      if (!(await store.revokeKey(id))) {
        throw new ApiError('not_found', `no active key with id ${JSON.stringify(id.slice(0, 100))}`);
      }
      verifier.forget(id);
      dropConnections(id);
      return { id, revoked: true };
    },
  );
};
