/**
 * What the web app's device and admin pages need beyond the media API: a user's own devices
 * (list with cameras and last seen, create, revoke), their processing queue counts, and the
 * upload limits a client checks files against before sending them.
 */
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { createOwnedDevice, listOwnedDevices, queueCounts, revokeOwnedDevice } from '../../auth/devices.ts';
import type { Config } from '../../config.ts';
import type { Queryable } from '../../db/pool.ts';
import { MIME_CATALOG } from '../../media/catalog.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import { errors, Nullable, Text, Uuid } from '../schemas.ts';

export interface DeviceRouteDeps {
  db: Queryable;
  config: Config;
  auth: ReturnType<typeof registerAuth>;
}

const DateTime = Type.String({ format: 'date-time' });
const DeviceView = Type.Object({
  id: Uuid,
  name: Type.String(),
  ownerUserId: Nullable(Type.String()),
  createdAt: DateTime,
});
const OwnedDeviceView = Type.Object({
  ...DeviceView.properties,
  lastSeenAt: Nullable(
    Type.String({ format: 'date-time', description: 'When the device last opened an upload session.' }),
  ),
  cameras: Type.Array(
    Type.Object({
      cameraId: Type.String(),
      latestCaptureAt: DateTime,
      mediaCount: Type.Integer(),
    }),
    { description: 'Cameras with media of this owner, newest capture first.' },
  ),
});

export const deviceRoutes: FastifyPluginAsyncTypebox<DeviceRouteDeps> = async (app, { db, config, auth }) => {
  app.get(
    '/devices',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Your devices, with their cameras and when each was last seen (users)',
        tags: ['devices'],
        operationId: 'listDevices',
        response: { 200: Type.Object({ items: Type.Array(OwnedDeviceView) }), ...errors(401, 404) },
      },
    },
    async (request) => ({ items: await listOwnedDevices(db, principalOf(request)) }),
  );

  app.post(
    '/devices',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Register a device you own; its API key is in this answer only',
        tags: ['devices'],
        operationId: 'createDevice',
        body: Type.Object({ name: Text({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
        response: {
          201: Type.Object({
            device: DeviceView,
            apiKey: Type.String({ description: 'Shown once: only its SHA-256 is stored.' }),
          }),
          ...errors(400, 401, 404),
        },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await createOwnedDevice(db, principalOf(request), request.body.name)),
  );

  app.delete(
    '/devices/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Revoke a device you own (its key stops working at once)',
        tags: ['devices'],
        operationId: 'revokeDevice',
        params: Type.Object({ id: Uuid }),
        response: { 204: Type.Null(), ...errors(400, 401, 404) },
      },
    },
    async (request, reply) => {
      await revokeOwnedDevice(db, principalOf(request), request.params.id);
      return reply.status(204).send(null);
    },
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
