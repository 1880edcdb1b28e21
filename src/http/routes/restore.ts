import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { EmptyBody, MediaIdParams, RestoreStatus } from '../../contract/index.ts';
import type { RestoreStatus as RestoreResult } from '../../media/archive.ts';
import type { MediaService } from '../../media/service.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import { errors } from '../schemas.ts';
import { ROUTES } from '../urls.ts';

export interface RestoreRouteDeps {
  media: MediaService;
  auth: ReturnType<typeof registerAuth>;
}

const toView = (s: RestoreResult) => ({
  mediaId: s.mediaId,
  state: s.state,
  storageClass: s.storageClass,
  restoredUntil: s.restoredUntil?.toISOString() ?? null,
});

/** Originals in archive storage (docs/CONTRACTS.md "Archived originals"). */
export const restoreRoutes: FastifyPluginAsyncTypebox<RestoreRouteDeps> = async (app, { media, auth }) => {
  app.get(
    ROUTES.restore,
    {
      onRequest: auth.required,
      schema: {
        summary: 'Where the original stands: readable, archived, being restored, restored',
        tags: ['media'],
        operationId: 'getRestoreStatus',
        params: MediaIdParams,
        response: { 200: RestoreStatus, ...errors(401, 404, 409, 503) },
      },
    },
    async (request) => toView(await media.restores.status(principalOf(request), request.params.id)),
  );

  app.post(
    ROUTES.restore,
    {
      onRequest: auth.required,
      config: { optionalBody: true },
      schema: {
        summary: 'Restore an archived original (S3 RestoreObject); the owner only',
        description:
          'The body is optional: none or `{}`. 202 while a restore runs (started now or before; it takes hours on S3 GLACIER), 200 when the original is readable already. Days and retrieval tier come from `S3_RESTORE_DAYS` / `S3_RESTORE_TIER`.',
        tags: ['media'],
        operationId: 'restoreOriginal',
        params: MediaIdParams,
        body: EmptyBody,
        response: { 200: RestoreStatus, 202: RestoreStatus, ...errors(400, 401, 404, 409, 503) },
      },
    },
    async (request, reply) => {
      const s = await media.restores.restore(principalOf(request), request.params.id);
      return reply.status(s.state === 'restoring' ? 202 : 200).send(toView(s));
    },
  );
};
