import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator, Principal } from '../auth/principals.ts';
import { AppError } from '../errors.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export function registerAuth(app: FastifyInstance, authenticator: Authenticator) {
  app.decorateRequest('principal', null);
  return {
    /** preHandler: the request must carry valid credentials. */
    required: async (request: FastifyRequest, _reply: FastifyReply) => {
      request.principal = await authenticator.authenticate(request.headers.authorization);
    },
    /** preHandler: credentials are optional (the route accepts a signed URL instead). */
    optional: async (request: FastifyRequest, _reply: FastifyReply) => {
      if (request.headers.authorization !== undefined) {
        request.principal = await authenticator.authenticate(request.headers.authorization);
      }
    },
  };
}

export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError('unauthorized');
  return request.principal;
}

/**
 * Route-level rate limit keyed by principal, not by IP (many cameras can sit behind one NAT).
 * Runs after authentication (the plugin is registered with `hook: 'preHandler'`).
 */
export function perPrincipalRateLimit(maxPerMinute: number) {
  return {
    max: maxPerMinute,
    timeWindow: 60_000,
    keyGenerator: (req: FastifyRequest) => {
      const p = req.principal;
      return p === null ? req.ip : p.kind === 'device' ? `device:${p.deviceId}` : `user:${p.userId}`;
    },
  };
}
