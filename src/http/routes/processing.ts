import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { IMMUTABLE, type ProcessingService } from '../../processing/service.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import {
  errors,
  MediaIdParams,
  MediaView,
  toMediaView,
  Uuid,
  DeliveryQuery,
  deliveryResponses,
} from '../schemas.ts';
import { sendObject } from '../send-object.ts';

export interface ProcessingRouteDeps {
  processing: ProcessingService;
  auth: ReturnType<typeof registerAuth>;
}

export const processingRoutes: FastifyPluginAsyncTypebox<ProcessingRouteDeps> = async (
  app,
  { processing, auth },
) => {
  app.post(
    '/media/:id/retry-processing',
    {
      preHandler: auth.required,
      schema: {
        summary: 'Requeue processing of a FAILED media',
        tags: ['processing'],
        params: MediaIdParams,
        body: Type.Union([Type.Null(), Type.Object({}, { additionalProperties: false })]),
        response: { 202: MediaView, ...errors(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const m = await processing.retry(principal, request.params.id);
      return reply.status(202).send(toMediaView(m, principal));
    },
  );

  app.get(
    '/media/:id/variants/:name',
    {
      preHandler: auth.required,
      schema: {
        summary: 'Serve one image variant (302 to a signed URL, or proxied)',
        tags: ['processing'],
        params: Type.Object({ id: Uuid, name: Type.String({ pattern: '^[a-z0-9]{1,32}$' }) }),
        querystring: DeliveryQuery,
        response: deliveryResponses(400, 401, 404, 416),
      },
    },
    async (request, reply) => {
      const { id, name } = request.params;
      const plan = await processing.variant(principalOf(request), id, name, request.query.mode);
      if (plan.kind === 'redirect') {
        // The signed URL expires; only the bytes behind it are immutable, so the 302 is not cached.
        return reply.header('cache-control', 'no-store').redirect(plan.url, 302);
      }
      return sendObject(request, reply, {
        ...plan,
        cacheControl: IMMUTABLE,
        open: (range) => processing.openObject(plan.key, range),
      });
    },
  );
};
