import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { MediaService } from '../../media/service.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import { errors, Uuid } from '../schemas.ts';

export interface UsageRouteDeps {
  media: MediaService;
  auth: ReturnType<typeof registerAuth>;
}

const Amounts = {
  storedBytes: Type.Integer({
    description: 'Declared bytes of media not DELETED or FAILED (open sessions reserve theirs).',
  }),
  openSessions: Type.Integer({ description: 'PENDING upload sessions.' }),
};
export const UsageView = Type.Object({
  ...Amounts,
  limits: Type.Object(
    {
      storedBytes: Type.Integer({ description: '0 = no limit.' }),
      openSessions: Type.Integer({ description: '0 = no limit.' }),
    },
    { description: 'QUOTA_USER_* or QUOTA_DEVICE_*: checked when a session is created.' },
  ),
});

export const usageRoutes: FastifyPluginAsyncTypebox<UsageRouteDeps> = async (app, { media, auth }) => {
  app.get(
    '/users/:userId/usage',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Your storage use and quota (`me`)',
        operationId: 'getUserUsage',
        tags: ['media'],
        params: Type.Object({ userId: Type.String({ minLength: 1, maxLength: 200 }) }),
        response: { 200: UsageView, ...errors(400, 401, 404) },
      },
    },
    async (request) => media.usage(principalOf(request), { userId: request.params.userId }),
  );
  app.get(
    '/devices/:deviceId/usage',
    {
      onRequest: auth.required,
      schema: {
        summary: 'A device’s storage use and quota (the device, or its owner)',
        operationId: 'getDeviceUsage',
        tags: ['media'],
        params: Type.Object({ deviceId: Uuid }),
        response: { 200: UsageView, ...errors(400, 401, 404) },
      },
    },
    async (request) => media.usage(principalOf(request), { deviceId: request.params.deviceId }),
  );
};
