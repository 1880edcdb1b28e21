import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { FastifyInstance } from 'fastify';

/** Every method a route uses (HEAD comes with each GET). */
export const CORS_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
/** Request headers the routes read and the SDK sends (Content-Length is set by the browser). */
export const CORS_ALLOWED_HEADERS = [
  'Authorization',
  'Content-Type',
  'Idempotency-Key',
  'Range',
  'If-None-Match',
  'If-Range',
];
/** Response headers a page may read beyond the CORS-safelisted ones. */
export const CORS_EXPOSED_HEADERS = [
  'ETag',
  'Retry-After',
  'Location',
  'Content-Range',
  'Content-Disposition',
  'Accept-Ranges',
  'X-RateLimit-Limit',
  'X-RateLimit-Remaining',
  'X-RateLimit-Reset',
];
/** Seconds a browser may reuse a preflight answer. */
export const CORS_MAX_AGE = 600;

/**
 * CORS for web apps on other origins (CORS_ORIGINS). Nothing is registered without origins, so the
 * API then sends no CORS headers at all. The headers are added in `onRequest`, before auth, rate
 * limiting and the handler, so error responses (401, 404, 429, 503 …) carry them too and the page
 * can read the JSON error; preflights are answered there (204) and never reach auth or the 404
 * handler. A disallowed origin gets no `Access-Control-Allow-Origin` (the browser blocks the
 * response); the request itself is served as usual. Bearer tokens, not cookies: no credentials mode.
 */
export async function registerCors(app: FastifyInstance, origins: readonly string[]): Promise<void> {
  if (origins.length === 0) return;
  const options: FastifyCorsOptions = {
    // '*' alone: any origin (no Vary needed); otherwise the request's origin is echoed when listed.
    origin: origins.includes('*') ? '*' : [...origins],
    methods: CORS_METHODS,
    allowedHeaders: CORS_ALLOWED_HEADERS,
    exposedHeaders: CORS_EXPOSED_HEADERS,
    credentials: false,
    maxAge: CORS_MAX_AGE,
    // Any OPTIONS is answered 204 (a bare OPTIONS would otherwise get a text/plain 400, not our
    // JSON error shape); only a listed Origin makes the answer usable by a browser.
    strictPreflight: false,
  };
  await app.register(cors, options);
}
