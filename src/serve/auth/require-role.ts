/**
 * Who a request acts as, and the one check routes use. The auth plugin (auth-plugin.ts) sets
 * `request.principal` from the `Authorization: Bearer KEY` header (or `?apiKey=` on WebSocket);
 * routes that need a role add `preHandler: requireRole('admin')`.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.ts';

export type Role = 'read' | 'admin';

/** The API key a request presented, once verified. */
export interface Principal {
  keyId: string;
  name: string;
  role: Role;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified key of the request, or null when it presented none. */
    principal: Principal | null;
  }
}

/** A preHandler that lets the request through only with a key of `role` (admin satisfies read). */
export function requireRole(role: Role) {
  return async function checkRole(request: FastifyRequest, _reply: FastifyReply): Promise<void> {
    const principal = request.principal ?? null;
    if (principal === null) {
      throw new ApiError(
        'unauthorized',
        `this needs an API key with role "${role}": send Authorization: Bearer KEY`,
      );
    }
    if (role === 'admin' && principal.role !== 'admin') {
      throw new ApiError(
        'forbidden',
        `key "${principal.name}" has role "${principal.role}"; this needs "admin"`,
      );
    }
  };
}
