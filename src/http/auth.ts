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
 * Route-level rate limit keyed by principal, not by IP (many cameras can sit behind one NAT), in a
 * named bucket: routes that do the same thing (a route and its alias) share one.
 * Runs after authentication (the plugin is registered with `hook: 'preHandler'`). Requests that
 * end in a 5xx are given back (the server failed, not the client).
 */
export function perPrincipalRateLimit(bucket: string, maxPerMinute: number) {
  return {
    max: maxPerMinute,
    timeWindow: 60_000,
    keyGenerator: (req: FastifyRequest) => {
      const p = req.principal;
      const who =
        p === null ? `ip:${req.ip}` : p.kind === 'device' ? `device:${p.deviceId}` : `user:${p.userId}`;
      // Remembered so a 5xx can give the request back (see rate-limit-store.ts).
      req.rateLimitKey = `${bucket} ${who}`;
      return req.rateLimitKey;
    },
  };
}
