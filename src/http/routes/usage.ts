import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { MediaService } from '../../media/service.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import { DeviceParams, UsageView, UserParams } from '../../contract/index.ts';
import { errors } from '../schemas.ts';

export interface UsageRouteDeps {
  media: MediaService;
  auth: ReturnType<typeof registerAuth>;
}

export const usageRoutes: FastifyPluginAsyncTypebox<UsageRouteDeps> = async (app, { media, auth }) => {
  app.get(
    '/users/:userId/usage',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Your storage use and quota (`me`)',
        operationId: 'getUserUsage',
        tags: ['media'],
        params: UserParams,
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
        params: DeviceParams,
        response: { 200: UsageView, ...errors(400, 401, 404) },
      },
    },
    async (request) => media.usage(principalOf(request), { deviceId: request.params.deviceId }),
  );
};
