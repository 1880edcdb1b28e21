/**
 * Request metrics, request ids and log context, and `GET /metrics` on the API's own port (only
 * when METRICS_TOKEN is set; the listener of its own is src/metrics/endpoint.ts).
 *
 * - Every request is timed by its route pattern (`/api/v1/media/:id`), never its URL; a request no
 *   route matched counts as `unmatched`.
 * - Request ids are UUIDs (unique across processes and restarts, unlike Fastify's `req-1`), or a
 *   well-formed `X-Request-Id` a proxy in front set; every answer names it in `x-request-id`.
 * - A request on one media binds `mediaId` to its logger, so its log lines (and the "request
 *   completed" one) carry it; with the worker's `mediaId`, one upload is followed across processes.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import { MetricsText } from '../contract/index.ts';
import { authorizedForMetrics, type ProcessMetrics } from '../metrics/endpoint.ts';
import { errors } from './schemas.ts';

const FORWARDED_ID = /^[A-Za-z0-9._:-]{8,128}$/;

/** Fastify's `genReqId`. */
export function requestId(req: { headers: Record<string, string | string[] | undefined> }): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && FORWARDED_ID.test(given) ? given : randomUUID();
}

/** Binds `mediaId` to the request's log lines from here on (its "request completed" line too). */
export function logMediaId(request: FastifyRequest, reply: FastifyReply, mediaId: string): void {
  const log = request.log.child({ mediaId });
  request.log = log;
  reply.log = log;
}

/** Routes whose `:id` is a media id (the tus upload id is the media id too). */
const MEDIA_ROUTE = /^\/api\/v1\/(media|tus)\/:id(\/|$)/;

export function registerObservability(app: FastifyInstance, metrics: ProcessMetrics): void {
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
    const id = (request.params as { id?: unknown } | undefined)?.id;
    if (typeof id === 'string' && MEDIA_ROUTE.test(request.routeOptions.url ?? ''))
      logMediaId(request, reply, id);
  });
  const recorder = metrics.recorder;
  if (metrics.prometheus !== undefined) {
    app.addHook('onResponse', async (request, reply) => {
      recorder.httpRequest(
        request.method,
        request.routeOptions.url ?? 'unmatched',
        reply.statusCode,
        reply.elapsedTime / 1000,
      );
    });
  }
  const prometheus = metrics.prometheus;
  if (prometheus === undefined || metrics.token === undefined) return;
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics (text exposition format); only when METRICS_TOKEN is set',
        tags: ['health'],
        operationId: 'metrics',
        security: [{ bearer: [] }],
        response: { 200: MetricsText, ...errors(401) },
      },
    },
    async (request, reply) => {
      if (!authorizedForMetrics(request.headers.authorization, metrics.token)) {
        throw new AppError('unauthorized', 'Metrics need the METRICS_TOKEN bearer token.', undefined, {
          'www-authenticate': 'Bearer',
        });
      }
      const { contentType, body } = await prometheus.expose();
      return reply.type(contentType).header('cache-control', 'no-store').send(body);
    },
  );
}
