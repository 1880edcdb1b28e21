import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../config.ts';
import { AppError } from '../../errors.ts';
import type { MultipartUploads } from '../../media/multipart.ts';
import type { MediaService } from '../../media/service.ts';
import { perPrincipalRateLimit, principalOf, type registerAuth } from '../auth.ts';
import { isServerFault } from '../errors.ts';
import { withIdleTimeout } from '../idle-body.ts';
import {
  EmptyBody,
  MediaIdParams,
  MediaView,
  PartListing,
  PartParams,
  PartUploadQuery,
  SignPartsBody,
  SignPartsResponse,
  StoredPart,
} from '../../contract/index.ts';
import { errors, PUBLIC, toMediaView } from '../schemas.ts';
import { acceptRepeatedContentType } from '../upload-content-type.ts';
import { ROUTES } from '../urls.ts';

export interface MultipartRouteDeps {
  media: MediaService;
  multipart: MultipartUploads;
  auth: ReturnType<typeof registerAuth>;
  config: Pick<Config, 'rateLimit' | 'uploads'>;
}

/** The multipart protocol: part URLs on demand, stored parts for resume, cancel. */
export const multipartRoutes: FastifyPluginAsyncTypebox<MultipartRouteDeps> = async (
  app,
  { media, multipart, auth, config },
) => {
  app.post(
    '/media/:id/parts',
    {
      onRequest: auth.required,
      config: {
        rateLimit: perPrincipalRateLimit('part-signing', config.rateLimit.sessionsPerMinute),
      },
      schema: {
        summary: 'Sign upload URLs for some parts of a multipart upload',
        tags: ['media', 'multipart'],
        operationId: 'signParts',
        params: MediaIdParams,
        body: SignPartsBody,
        response: {
          200: SignPartsResponse,
          ...errors(400, 401, 404, 409, 410, 429),
        },
      },
    },
    async (request) => {
      const m = await media.get(principalOf(request), request.params.id);
      return { parts: await multipart.signParts(m, request.body.partNumbers) };
    },
  );

  app.get(
    '/media/:id/parts',
    {
      onRequest: auth.required,
      schema: {
        summary: 'List the parts already stored (resume after a restart)',
        tags: ['media', 'multipart'],
        operationId: 'listParts',
        params: MediaIdParams,
        response: {
          200: PartListing,
          ...errors(400, 401, 404, 409, 410),
        },
      },
    },
    async (request) => {
      const m = await media.get(principalOf(request), request.params.id);
      return multipart.listStored(m);
    },
  );

  app.post(
    '/media/:id/cancel',
    {
      onRequest: auth.required,
      config: { optionalBody: true },
      schema: {
        summary: 'Cancel a pending upload (aborts a multipart upload); the media becomes FAILED (cancelled)',
        description: 'The body is optional: none or `{}`.',
        tags: ['media', 'multipart'],
        operationId: 'cancelUpload',
        params: MediaIdParams,
        body: EmptyBody,
        response: { 200: MediaView, ...errors(400, 401, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      await multipart.cancel(await media.get(principal, request.params.id));
      const m = await media.get(principal, request.params.id);
      return toMediaView(m, principal, await media.links(m, principal));
    },
  );
};

/**
 * The part upload route for stores that cannot presign parts (local disk): raw bodies, a URL
 * signed by the API for one part of one upload, the part's ETag in the response header.
 */
export const partUploadRoute: FastifyPluginAsyncTypebox<MultipartRouteDeps> = async (
  app,
  { media, multipart, config },
) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));
  acceptRepeatedContentType(app);

  app.put(
    ROUTES.part,
    {
      config: { rawBody: true },
      schema: {
        summary: 'Upload one part (local store) to a signed part URL',
        description:
          'The body is exactly the part’s bytes; the `ETag` response header is the part’s ETag for `complete`.',
        tags: ['multipart'],
        operationId: 'uploadPart',
        security: PUBLIC,
        params: PartParams,
        querystring: PartUploadQuery,
        response: { 200: StoredPart, ...errors(400, 403, 404, 408, 409, 410, 413, 422, 503, 507) },
      },
    },
    async (request, reply) => {
      const { id, partNumber } = request.params;
      // The signature first: no row is read for a URL this API did not sign.
      const { uploadId } = multipart.verifyPartSignature(id, partNumber, request.query);
      const lengthHeader = request.headers['content-length'];
      try {
        // The part URL's signature (verified above) is the authorisation.
        const m = await media.loadUnchecked(id);
        const part = await multipart.receivePart(
          m,
          partNumber,
          uploadId,
          withIdleTimeout(request.raw, config.uploads.idleTimeoutSeconds * 1000),
          lengthHeader !== undefined ? Number(lengthHeader) : undefined,
        );
        void reply.header('etag', part.etag);
        return part;
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
