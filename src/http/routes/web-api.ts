/**
 * What the web app's pages need beyond the rest of the API: a device's cameras (devices page),
 * the caller's processing queue counts (admin page), and the upload limits a client checks files
 * against before sending them (uploader).
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../config.ts';
import type { Queryable } from '../../db/pool.ts';
import { MIME_CATALOG } from '../../media/catalog.ts';
import { camerasOf, queueCounts } from '../../media/overview.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import { errors, Uuid } from '../schemas.ts';

export interface WebApiRouteDeps {
  db: Queryable;
  config: Config;
  auth: ReturnType<typeof registerAuth>;
}

export const webApiRoutes: FastifyPluginAsyncTypebox<WebApiRouteDeps> = async (app, { db, config, auth }) => {
  app.get(
    '/devices/:id/cameras',
    {
      onRequest: auth.required,
      schema: {
        summary: 'A device’s cameras with their latest capture (its owner)',
        tags: ['devices'],
        operationId: 'listDeviceCameras',
        params: Type.Object({ id: Uuid }),
        response: {
          200: Type.Object({
            items: Type.Array(
              Type.Object({
                cameraId: Type.String(),
                latestCaptureAt: Type.String({ format: 'date-time' }),
                mediaCount: Type.Integer(),
              }),
              { description: 'Cameras with media of the caller, newest capture first.' },
            ),
          }),
          ...errors(400, 401, 404),
        },
      },
    },
    async (request) => ({ items: await camerasOf(db, principalOf(request), request.params.id) }),
  );

  app.get(
    '/users/:userId/queue',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Your media in the processing queue (`me`): waiting, active, failed, dead-lettered',
        tags: ['processing'],
        operationId: 'getUserQueue',
        params: Type.Object({ userId: Type.String({ minLength: 1, maxLength: 200 }) }),
        response: {
          200: Type.Object({
            waiting: Type.Integer({ description: 'UPLOADED: queued for processing.' }),
            active: Type.Integer({ description: 'PROCESSING.' }),
            failed: Type.Integer({ description: 'FAILED after upload (retry with retry-processing).' }),
            deadLettered: Type.Integer({
              description:
                'FAILED with `processing_failed`: every retry failed; the job is in the dead-letter queue.',
            }),
          }),
          ...errors(400, 401, 404),
        },
      },
    },
    async (request) => queueCounts(db, principalOf(request), request.params.userId),
  );

  app.get(
    '/limits',
    {
      onRequest: auth.required,
      schema: {
        summary: 'What this server accepts: MIME types and size limits (for client-side checks)',
        tags: ['media'],
        operationId: 'getUploadLimits',
        response: {
          200: Type.Object({
            allowedMimeTypes: Type.Array(Type.String()),
            maxImageBytes: Type.Integer(),
            maxVideoBytes: Type.Integer(),
          }),
          ...errors(401),
        },
      },
    },
    async () => ({
      allowedMimeTypes: [...(config.uploads.allowedMimeTypes ?? Object.keys(MIME_CATALOG))],
      maxImageBytes: config.uploads.maxImageBytes,
      maxVideoBytes: config.uploads.maxVideoBytes,
    }),
  );
};
