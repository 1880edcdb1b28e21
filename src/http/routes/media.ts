import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AuditWriter } from '../../audit/writer.ts';
import type { Config } from '../../config.ts';
import { AppError } from '../../errors.ts';
import type { MediaService } from '../../media/service.ts';
import type { Admission } from '../../processing/admission.ts';
import { admittedThen } from '../admission.ts';
import { perPrincipalRateLimit, principalOf, type registerAuth } from '../auth.ts';
import {
  CreateSessionBody,
  DEFAULT_PAGE_SIZE,
  DeliveryQuery,
  DeviceListParams,
  IdempotencyHeaders,
  ListQuery,
  ListResponse,
  MediaIdParams,
  MediaView,
  OptionalCompleteBody,
  SessionResponse,
  StatusResponse,
  UploadQuery,
  UploadResponse,
  UserParams,
} from '../../contract/index.ts';
import { BEARER_OR_SIGNED, deliveryResponses, errors, NoContent, toMediaView } from '../schemas.ts';
import { sendObject } from '../send-object.ts';
import { isServerFault } from '../errors.ts';
import { withIdleTimeout } from '../idle-body.ts';
import { acceptRepeatedContentType } from '../upload-content-type.ts';
import { logMediaId } from '../observability.ts';
import { ROUTES } from '../urls.ts';

export interface MediaRouteDeps {
  media: MediaService;
  auth: ReturnType<typeof registerAuth>;
  config: Pick<Config, 'rateLimit' | 'uploads'>;
  /** Records downloads and the signed URLs handed out (asynchronously: never fails the answer). */
  audit: AuditWriter;
  admission?: Admission | undefined;
}

export const mediaRoutes: FastifyPluginAsyncTypebox<MediaRouteDeps> = async (
  app,
  { media, auth, config, audit, admission },
) => {
  const createSession = {
    // Admission control first: after authentication, a refusal under overload waited for the key
    // lookup's connection (measured: 31 s p50 at 200 clients on a saturated machine).
    onRequest: admittedThen(admission, auth.required),
    config: {
      // One bucket for both URLs (the alias must not double the limit).
      rateLimit: perPrincipalRateLimit('sessions', config.rateLimit.sessionsPerMinute),
    },
    schema: {
      summary: 'Create an upload session',
      tags: ['media'],
      operationId: 'createUploadSession',
      headers: IdempotencyHeaders,
      body: CreateSessionBody,
      response: {
        200: SessionResponse,
        201: SessionResponse,
        ...errors(400, 401, 403, 404, 409, 413, 422, 429),
      },
    },
  } as const;
  for (const [url, operationId] of [
    ['/media', 'createUploadSession'],
    ['/media/upload-session', 'createUploadSessionAlias'],
  ] as const) {
    app.post(
      url,
      { ...createSession, schema: { ...createSession.schema, operationId } },
      async (request, reply) => {
        const principal = principalOf(request);
        const result = await media.createSession(principal, request.body, request.headers['idempotency-key']);
        logMediaId(request, reply, result.media.id);
        void reply.status(result.created ? 201 : 200);
        return {
          mediaId: result.media.id,
          status: result.media.status,
          upload: result.upload,
          media: toMediaView(result.media, principal, await media.links(result.media, principal)),
        };
      },
    );
  }

  app.get(
    '/media/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Get media metadata',
        tags: ['media'],
        operationId: 'getMedia',
        params: MediaIdParams,
        response: { 200: MediaView, ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const m = await media.view(principal, request.params.id);
      const view = toMediaView(m, principal, await media.links(m, principal));
      // The record carries a signed URL of the original: as good as a download.
      if (view.downloadUrl !== null) {
        audit.record({ action: 'media.urls_issued', actor: principal, mediaId: m.id });
      }
      return view;
    },
  );

  app.get(
    '/media/:id/status',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Get processing status',
        tags: ['media'],
        operationId: 'getMediaStatus',
        params: MediaIdParams,
        response: { 200: StatusResponse, ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const m = await media.view(principalOf(request), request.params.id);
      return {
        mediaId: m.id,
        status: m.status,
        error: m.error,
        updatedAt: m.updated_at.toISOString(),
        attempts: m.processing_attempts,
        progress: m.processing_progress,
        lastError: m.processing_last_error,
      };
    },
  );

  app.post(
    '/media/:id/complete',
    {
      onRequest: auth.required,
      // A 10,000-part list is ~600 KB of JSON.
      bodyLimit: 1024 * 1024,
      config: { optionalBody: true },
      schema: {
        summary: 'Verify the uploaded object (joining multipart parts first) and start processing',
        description:
          'The body is optional: none, `{}`, or (multipart uploads) `{"parts": [...]}`. An empty body with `content-type: application/json` counts as none.',
        tags: ['media'],
        operationId: 'completeUpload',
        params: MediaIdParams,
        body: OptionalCompleteBody,
        response: { 200: MediaView, ...errors(400, 401, 404, 409, 413, 422) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const m = await media.complete(principal, request.params.id, request.body?.parts);
      return toMediaView(m, principal, await media.links(m, principal));
    },
  );

  app.delete(
    '/media/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Delete media',
        tags: ['media'],
        operationId: 'deleteMedia',
        params: MediaIdParams,
        response: { 204: NoContent, ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await media.delete(principalOf(request), request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/media/:id/download',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Download the original (302 to a signed URL, the signed URL as JSON, or proxied)',
        tags: ['media'],
        operationId: 'downloadMedia',
        params: MediaIdParams,
        querystring: DeliveryQuery,
        response: deliveryResponses(['image/*', 'video/*'], 400, 401, 404, 409, 416),
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const mode = request.query.mode ?? 'redirect';
      const plan = await media.download(principal, request.params.id, mode);
      audit.record({
        action: 'media.downloaded',
        actor: principal,
        mediaId: request.params.id,
        details: { mode },
      });
      if (plan.kind === 'redirect') {
        return reply.header('cache-control', 'no-store').redirect(plan.url, 302);
      }
      if (plan.kind === 'url') {
        return reply
          .header('cache-control', 'no-store')
          .send({ url: plan.url, expiresAt: plan.expiresAt.toISOString() });
      }
      return sendObject(request, reply, { ...plan, cacheControl: 'private, max-age=300' });
    },
  );

  app.get(
    '/devices/:deviceId/media',
    {
      onRequest: auth.required,
      schema: {
        summary: 'List a device’s media (`me` for the calling device), newest capture first',
        tags: ['media'],
        operationId: 'listDeviceMedia',
        params: DeviceListParams,
        querystring: ListQuery,
        response: { 200: ListResponse, ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const query = { ...request.query, limit: request.query.limit ?? DEFAULT_PAGE_SIZE };
      const page = await media.list(principal, { deviceId: request.params.deviceId }, query);
      const items = await Promise.all(
        page.items.map(async (m) => toMediaView(m, principal, await media.links(m, principal))),
      );
      return { items, nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/users/:userId/media',
    {
      onRequest: auth.required,
      schema: {
        summary: 'List a user’s media (`me` for yourself), newest capture first',
        tags: ['media'],
        operationId: 'listUserMedia',
        params: UserParams,
        querystring: ListQuery,
        response: { 200: ListResponse, ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const query = { ...request.query, limit: request.query.limit ?? DEFAULT_PAGE_SIZE };
      const page = await media.list(principal, { userId: request.params.userId }, query);
      const items = await Promise.all(
        page.items.map(async (m) => toMediaView(m, principal, await media.links(m, principal))),
      );
      return { items, nextCursor: page.nextCursor };
    },
  );
};

/**
 * The raw-body upload route lives in its own plugin so that only it accepts arbitrary content
 * types; every other route keeps strict JSON parsing.
 */
export const uploadRoute: FastifyPluginAsyncTypebox<MediaRouteDeps> = async (
  app,
  { media, auth, config },
) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));
  acceptRepeatedContentType(app);

  app.put(
    ROUTES.upload,
    {
      onRequest: auth.optional,
      config: { rawBody: true },
      schema: {
        summary: 'Upload the bytes (local store): a signed URL or the owner’s credentials',
        description:
          'The body is the file, with `Content-Type` equal to the declared `mimeType` (the same type repeated counts as one). Authorised by the `expires` + `sig` of `upload.url`, or by the owner’s bearer token.',
        tags: ['media'],
        operationId: 'uploadBytes',
        security: BEARER_OR_SIGNED,
        params: MediaIdParams,
        querystring: UploadQuery,
        response: {
          200: UploadResponse,
          ...errors(400, 401, 403, 404, 408, 409, 410, 413, 422, 503, 507),
        },
      },
    },
    // An early rejection closes the connection without reading the body (../linger.ts).
    async (request) => {
      const { id } = request.params;
      const { expires, sig } = request.query;
      if (expires !== undefined || sig !== undefined) {
        media.verifyUploadSignature(id, expires ?? '', sig ?? '');
      } else if (!request.principal) {
        throw new AppError('unauthorized', 'Use the signed upload URL or send Authorization.');
      }
      const lengthHeader = request.headers['content-length'];
      try {
        const body = withIdleTimeout(request.raw, config.uploads.idleTimeoutSeconds * 1000);
        const m = await media.receiveUpload(request.principal, id, body, {
          contentType: request.headers['content-type'],
          contentLength: lengthHeader !== undefined ? Number(lengthHeader) : undefined,
        });
        return { mediaId: m.id, status: m.status, bytes: m.bytes, sha256: m.content_sha256 };
      } catch (err) {
        // Our own failure (a full disk, the database) may end the body stream too: not the client's fault.
        if (
          !(err instanceof AppError) &&
          !isServerFault(err) &&
          (request.raw.destroyed || request.raw.readableAborted)
        ) {
          throw new AppError('upload_aborted');
        }
        throw err;
      }
    },
  );
};
