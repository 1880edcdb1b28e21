import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError } from '../../errors.ts';
import type { ObjectStore } from '../../storage/types.ts';
import { StorageObjectQuery } from '../../contract/index.ts';
import { bytesResponse, errors, NotModified, PUBLIC } from '../schemas.ts';
import { sendObject } from '../send-object.ts';
import { ROUTES, type PublicUrls } from '../urls.ts';

/**
 * Serves the local store's objects behind HMAC-signed URLs (the local equivalent of a presigned
 * S3 GET). The signature covers the key, the expiry and the response headers.
 */
export const storageRoutes: FastifyPluginAsyncTypebox<{ store: ObjectStore; urls: PublicUrls }> = async (
  app,
  { store, urls },
) => {
  app.get(
    ROUTES.storage,
    {
      schema: {
        summary: 'Signed object download (local store)',
        description:
          'The URLs of `download` and variant redirects on the local store; the signature in the query authorises them. The key is the object key with its `/` encoded as `%2F`.',
        tags: ['storage'],
        operationId: 'getStorageObject',
        security: PUBLIC,
        querystring: StorageObjectQuery,
        response: {
          200: bytesResponse('The object, of the signed `ct` type.', '*/*'),
          206: bytesResponse('The requested range.', '*/*'),
          304: NotModified,
          ...errors(400, 403, 404, 416),
        },
      },
    },
    async (request, reply) => {
      const key = (request.params as { '*': string })['*'];
      const { expires, ct, cd } = request.query;
      urls.verifyStorage(key, request.query);
      const stat = await store.stat(key);
      if (!stat) throw new AppError('not_found', 'Object not found.');
      return sendObject(request, reply, {
        ...stat,
        contentType: ct,
        contentDisposition: cd,
        // The URL itself expires; let browsers reuse it until then, never shared caches.
        cacheControl: `private, max-age=${Math.max(0, Number(expires) - Math.floor(Date.now() / 1000))}`,
        open: (range) => store.get(key, range),
      });
    },
  );
};
