import rateLimit, { type FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import { Type } from '@sinclair/typebox';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { AuditQueries } from '../audit/service.ts';
import type { AuditWriter } from '../audit/writer.ts';
import type { Authenticator } from '../auth/principals.ts';
import type { DeviceService } from '../devices/service.ts';
import type { Config } from '../config.ts';
import type { Queryable } from '../db/pool.ts';
import type { MultipartUploads } from '../media/multipart.ts';
import type { MediaService } from '../media/service.ts';
import type { TusUploads } from '../media/tus.ts';
import type { CircleService } from '../circles/service.ts';
import type { StreamAccess } from '../events/access.ts';
import type { EventHub } from '../events/stream.ts';
import type { WebhookService } from '../webhooks/service.ts';
import type { PostService } from '../posts/service.ts';
import type { ProfileService } from '../profiles/service.ts';
import type { HlsPlayback } from '../processing/playback.ts';
import type { ProcessingService } from '../processing/service.ts';
import type { ObjectStore } from '../storage/types.ts';
import type { ProcessMetrics } from '../metrics/endpoint.ts';
import { NO_METRICS } from '../metrics/port.ts';
import { registerAuth } from './auth.ts';
import { registerCors } from './cors.ts';
import { frameworkErrors, registerErrorHandling, SECURITY_HEADERS } from './errors.ts';
import { strictFormats } from './formats.ts';
import { registerJsonParser } from './json-body.ts';
import { registerObservability, requestId } from './observability.ts';
import { swaggerOptions } from './openapi-doc.ts';
import { clientErrorHandler, installLingeringClose } from './linger.ts';
import { refundableRateLimit, type RateWindows } from './rate-limit-store.ts';
import { PUBLIC } from './schemas.ts';
import { auditRoutes, registerAuditOrigin } from './routes/audit.ts';
import { healthRoutes } from './routes/health.ts';
import { hlsRoutes } from './routes/hls.ts';
import { mediaRoutes, uploadRoute } from './routes/media.ts';
import { circleRoutes } from './routes/circles.ts';
import { deviceRoutes } from './routes/devices.ts';
import { formUploadRoute } from './routes/form-upload.ts';
import { eventRoutes } from './routes/events.ts';
import { webhookRoutes } from './routes/webhooks.ts';
import { postRoutes } from './routes/posts.ts';
import { profileRoutes } from './routes/profiles.ts';
import { processingRoutes } from './routes/processing.ts';
import { restoreRoutes } from './routes/restore.ts';
import { multipartRoutes, partUploadRoute } from './routes/multipart.ts';
import { storageRoutes } from './routes/storage.ts';
import { tusRoutes } from './routes/tus.ts';
import { usageRoutes } from './routes/usage.ts';
import { webRoutes } from './routes/web.ts';
import { webApiRoutes } from './routes/web-api.ts';
import { API_PREFIX, type PublicUrls } from './urls.ts';
import type { Admission } from '../processing/admission.ts';

export interface HttpDeps {
  config: Config;
  logger: Logger;
  db: Queryable;
  authenticator: Authenticator;
  media: MediaService;
  processing: ProcessingService;
  playback: HlsPlayback;
  posts: PostService;
  profiles: ProfileService;
  circles: CircleService;
  devices: DeviceService;
  multipart: MultipartUploads;
  tus: TusUploads;
  store: ObjectStore;
  /** Public URLs: built, signed and checked (./urls.ts). */
  urls: PublicUrls;
  /** Live event streams (SSE). */
  events: { hub: EventHub; access: StreamAccess };
  webhooks: WebhookService;
  /** The audit log: its reader, and the writer of read records (downloads, signed URLs). */
  audit: { queries: AuditQueries; writer: AuditWriter };
  /** Admission control of new upload sessions (ADMISSION_MAX_BACKLOG_SECONDS); none: all admitted. */
  admission?: Admission | undefined;
  /**
   * Rate-limit counters: per-principal route limits, and failed authentications per IP (apart,
   * so addresses cannot push principals' windows out of a bounded in-memory store).
   */
  rateWindows: { routes: RateWindows; authFailures: RateWindows };
  /** Request timing and `GET /metrics` (with METRICS_TOKEN); without it, none. */
  metrics?: ProcessMetrics;
}

export async function buildHttpServer(deps: HttpDeps): Promise<FastifyInstance> {
  // pino's Logger is a FastifyBaseLogger; the cast keeps Fastify's generics on the base type.
  const app = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- without it the instance is typed on pino.Logger
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: 64 * 1024,
    // Unknown fields are an error, not silently dropped; query strings are coerced to their types.
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true, allErrors: false },
      onCreate: strictFormats,
    },
    requestIdHeader: false,
    genReqId: requestId,
    clientErrorHandler,
    // A path the router cannot decode (bad percent-encoding) or a parameter over its length limit:
    // answered before any route or hook, so with our error shape and headers here.
    frameworkErrors,
  }).withTypeProvider<TypeBoxTypeProvider>();

  registerErrorHandling(app);
  registerObservability(
    app,
    deps.metrics ?? { recorder: NO_METRICS, prometheus: undefined, token: undefined },
  );
  // An answer sent before the request body was read closes without a reset racing it (linger.ts).
  installLingeringClose(app);
  // First of the hooks: preflights are answered before auth or rate limits, errors carry the headers.
  await registerCors(app, deps.config.corsOrigins);
  // The JSON API takes JSON only; the upload route registers its own raw parser.
  app.removeContentTypeParser('text/plain');
  registerJsonParser(app);
  app.addHook('onSend', async (_request, reply) => {
    void reply.headers(SECURITY_HEADERS);
  });

  await app.register(swagger, swaggerOptions(deps.config));
  const limits = refundableRateLimit(deps.rateWindows.routes);
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode >= 500 && request.rateLimitKey !== undefined) {
      // The store may be what failed (the database is down): then there is nothing to give back.
      await limits
        .refund(request.rateLimitKey)
        .catch((err: unknown) => request.log.warn({ err }, 'rate limit refund failed'));
    }
  });
  await app.register(rateLimit, {
    global: false,
    store: limits.Store as unknown as FastifyRateLimitStoreCtor,
    // Routes state their window (perPrincipalRateLimit); the plugin's context has only the time left.
    errorResponseBuilder: (_req, ctx) => ({
      statusCode: 429,
      message: `Rate limit exceeded (${ctx.max} requests); retry in ${Math.max(1, Math.ceil(ctx.ttl / 1000))} seconds.`,
    }),
    addHeadersOnExceeding: {
      'x-ratelimit-limit': true,
      'x-ratelimit-remaining': true,
      'x-ratelimit-reset': true,
    },
    addHeaders: {
      'x-ratelimit-limit': true,
      'x-ratelimit-remaining': true,
      'x-ratelimit-reset': true,
      'retry-after': true,
    },
    hook: 'preHandler',
  });
  registerAuditOrigin(app);

  // Its own counters: keys made by unauthenticated callers (one per address) cannot push the
  // per-principal windows out of a shared map.
  const auth = registerAuth(app, deps.authenticator, {
    limits: refundableRateLimit(deps.rateWindows.authFailures),
    maxPerMinute: deps.config.rateLimit.authFailuresPerMinute,
  });
  await app.register(healthRoutes, { db: deps.db });
  await app.register(webRoutes, { config: deps.config });
  await app.register(
    async (api) => {
      await api.register(mediaRoutes, {
        media: deps.media,
        auth,
        config: deps.config,
        audit: deps.audit.writer,
        admission: deps.admission,
      });
      await api.register(uploadRoute, {
        media: deps.media,
        auth,
        config: deps.config,
        audit: deps.audit.writer,
      });
      await api.register(formUploadRoute, {
        media: deps.media,
        multipart: deps.multipart,
        auth,
        config: deps.config,
        admission: deps.admission,
      });
      await api.register(processingRoutes, { processing: deps.processing, auth, audit: deps.audit.writer });
      await api.register(restoreRoutes, { media: deps.media, auth });
      await api.register(hlsRoutes, { playback: deps.playback, auth, audit: deps.audit.writer });
      await api.register(auditRoutes, { audit: deps.audit.queries, auth });
      await api.register(postRoutes, { posts: deps.posts, media: deps.media, auth });
      await api.register(circleRoutes, { circles: deps.circles, media: deps.media, auth });
      await api.register(profileRoutes, { profiles: deps.profiles, media: deps.media, auth });
      await api.register(usageRoutes, { media: deps.media, auth });
      await api.register(deviceRoutes, { devices: deps.devices, auth, config: deps.config });
      await api.register(eventRoutes, {
        db: deps.db,
        ...deps.events,
        media: deps.media,
        auth,
        heartbeatSeconds: deps.config.events.heartbeatSeconds,
        logger: deps.logger,
      });
      await api.register(webhookRoutes, { webhooks: deps.webhooks, auth });
      await api.register(webApiRoutes, { db: deps.db, config: deps.config, auth });
      const mp = { media: deps.media, multipart: deps.multipart, auth, config: deps.config };
      await api.register(multipartRoutes, mp);
      await api.register(partUploadRoute, mp);
      await api.register(storageRoutes, { store: deps.store, urls: deps.urls });
      await api.register(tusRoutes, { tus: deps.tus, auth, config: deps.config, admission: deps.admission });
      api.get(
        '/openapi.json',
        {
          schema: {
            summary: 'This document',
            tags: ['meta'],
            operationId: 'getOpenApiDocument',
            security: PUBLIC,
            response: { 200: Type.Object({}, { additionalProperties: true, description: 'OpenAPI 3.0' }) },
          },
        },
        () => app.swagger(),
      );
    },
    { prefix: API_PREFIX },
  );
  return app;
}
