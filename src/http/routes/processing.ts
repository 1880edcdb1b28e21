import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AuditWriter } from '../../audit/writer.ts';
import type { ProcessingService } from '../../processing/service.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import { EmptyBody, MediaIdParams, MediaView, VariantParams, VariantQuery } from '../../contract/index.ts';
import { deliveryResponses, errors, toMediaView, variantUrl } from '../schemas.ts';
import { sendObject } from '../send-object.ts';
import { ROUTES } from '../urls.ts';

/**
 * A URL with the current `?v=<sha256>` names these very bytes (a new URL whenever they change):
 * cacheable forever. `private`, because the answer needed credentials: a shared cache keyed on the
 * URL alone would hand one user's image to whoever asks for that URL, with or without access (and
 * keep serving it after a delete). Shared caching goes through signed URLs (docs/CONTRACTS.md).
 */
const CONTENT_ADDRESSED = 'private, max-age=31536000, immutable';
/** Without `v` the bytes behind the URL change on reprocessing: the caller's cache only, revalidated. */
const REVALIDATE = 'private, no-cache';

export interface ProcessingRouteDeps {
  processing: ProcessingService;
  auth: ReturnType<typeof registerAuth>;
  /** Records variant downloads (asynchronously: never fails the answer). */
  audit: AuditWriter;
}

export const processingRoutes: FastifyPluginAsyncTypebox<ProcessingRouteDeps> = async (
  app,
  { processing, auth, audit },
) => {
  app.post(
    '/media/:id/retry-processing',
    {
      onRequest: auth.required,
      config: { optionalBody: true },
      schema: {
        summary: 'Requeue processing of a FAILED media',
        description: 'The body is optional: none or `{}`.',
        tags: ['processing'],
        operationId: 'retryProcessing',
        params: MediaIdParams,
        body: EmptyBody,
        response: { 202: MediaView, ...errors(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const m = await processing.retry(principal, request.params.id);
      return reply.status(202).send(toMediaView(m, principal, await processing.links(m, principal)));
    },
  );

  app.get(
    ROUTES.variant,
    {
      onRequest: auth.required,
      schema: {
        summary: 'Serve one image variant (302 to a signed URL, or proxied)',
        description:
          'With `mode=proxy` and the current `v` (the media record `url`), the bytes are `private, max-age=31536000, immutable` (they needed credentials: never stored by shared caches); without `v`, `private, no-cache` with the ETag; with a stale `v` (reprocessed), a 302 to the current URL. In redirect mode `v` does not change the answer: a 302 to a signed URL of the current bytes.',
        tags: ['processing'],
        operationId: 'getVariant',
        params: VariantParams,
        querystring: VariantQuery,
        response: deliveryResponses(['image/webp', 'image/avif'], 400, 401, 404, 416),
      },
    },
    async (request, reply) => {
      const { id, name } = request.params;
      const { mode = 'redirect', v } = request.query;
      const principal = principalOf(request);
      const plan = await processing.variant(principal, id, name, { mode, version: v });
      if (plan.kind !== 'moved') {
        audit.record({
          action: 'media.variant_downloaded',
          actor: principal,
          mediaId: id,
          details: { name, mode },
        });
      }
      if (plan.kind === 'redirect') {
        // The signed URL expires; only the bytes behind it are immutable, so the 302 is not cached.
        return reply.header('cache-control', 'no-store').redirect(plan.url, 302);
      }
      if (plan.kind === 'url') {
        return reply
          .header('cache-control', 'no-store')
          .send({ url: plan.url, expiresAt: plan.expiresAt.toISOString() });
      }
      if (plan.kind === 'moved') {
        // A page rendered before a reprocessing still shows the image: sent on to the current URL
        // (which stays proxied). Not cached: it changes with the next reprocessing.
        return reply
          .header('cache-control', 'no-store')
          .redirect(variantUrl(id, name, plan.sha256, mode), 302);
      }
      return sendObject(request, reply, {
        ...plan,
        // The service answers `moved` for any other `v`: here a `v` is the current one.
        cacheControl: v === undefined ? REVALIDATE : CONTENT_ADDRESSED,
      });
    },
  );
};
