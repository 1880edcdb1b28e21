import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Authenticator, Principal } from '../auth/principals.ts';
import { AppError } from '../errors.ts';
import type { RefundableRateLimit } from './rate-limit-store.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

const MINUTE_MS = 60_000;
/** Whole seconds (at least 1) of a time left, as `Retry-After` rounds it. */
const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** Failed authentications counted per client IP (0 per minute: no throttling). */
export interface FailedAuthThrottle {
  limits: Pick<RefundableRateLimit, 'hit' | 'peek'>;
  maxPerMinute: number;
}

/**
 * The auth hooks. They run in `onRequest`, before the body is parsed and the request validated, so
 * a caller without valid credentials learns nothing from a 400 (and sends no body for nothing).
 *
 * Failed authentications are throttled per client IP: a request that presents credentials which
 * do not hold is counted, and once an IP has had `maxPerMinute` of them in its window, requests
 * from it that present credentials get `429` with `Retry-After` until the window ends, before the
 * credentials are looked at. Successful authentications are never counted, and a request without
 * an `Authorization` header is neither counted nor throttled (it is a plain 401).
 */
export function registerAuth(
  app: FastifyInstance,
  authenticator: Authenticator,
  throttle: FailedAuthThrottle,
) {
  app.decorateRequest('principal', null);
  const authenticate = async (request: FastifyRequest, header: string): Promise<Principal> => {
    if (throttle.maxPerMinute === 0) return authenticator.authenticate(header);
    const key = `auth-failures ip:${request.ip}`;
    const seen = throttle.limits.peek(key);
    if (seen.count >= throttle.maxPerMinute) {
      const retryAfter = seconds(seen.ttl);
      throw new AppError(
        'rate_limited',
        `Too many failed authentications from this address: ${throttle.maxPerMinute} per minute; retry in ${retryAfter} seconds.`,
        undefined,
        { 'retry-after': String(retryAfter) },
      );
    }
    try {
      return await authenticator.authenticate(header);
    } catch (err) {
      if (err instanceof AppError && err.code === 'unauthorized') {
        // Counted before the 401 goes out (in the shared store every process then sees it at its
        // next hit); a store that cannot count does not turn the 401 into something else.
        await throttle.limits
          .hit(key, MINUTE_MS)
          .catch((hitErr: unknown) => request.log.warn({ err: hitErr }, 'failed-auth count failed'));
      }
      throw err;
    }
  };
  return {
    /** onRequest: the request must carry valid credentials. */
    required: async (request: FastifyRequest, _reply: FastifyReply) => {
      const header = request.headers.authorization;
      if (header === undefined) {
        throw new AppError('unauthorized', 'Missing Authorization header (expected "Bearer <token>").');
      }
      request.principal = await authenticate(request, header);
    },
    /** onRequest: credentials are optional (the route accepts a signed URL instead). */
    optional: async (request: FastifyRequest, _reply: FastifyReply) => {
      const header = request.headers.authorization;
      if (header !== undefined) request.principal = await authenticate(request, header);
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
    timeWindow: MINUTE_MS,
    keyGenerator: (req: FastifyRequest) => {
      const p = req.principal;
      const who =
        p === null ? `ip:${req.ip}` : p.kind === 'device' ? `device:${p.deviceId}` : `user:${p.userId}`;
      // Remembered so a 5xx can give the request back (see rate-limit-store.ts).
      req.rateLimitKey = `${bucket} ${who}`;
      return req.rateLimitKey;
    },
    // The plugin's context knows the time left, not the window: the window is stated here.
    errorResponseBuilder: (_req: FastifyRequest, ctx: { statusCode: number; max: number; ttl: number }) => ({
      statusCode: ctx.statusCode,
      message: `Rate limit exceeded: ${ctx.max} per minute; retry in ${seconds(ctx.ttl)} seconds.`,
    }),
  };
}
