import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { MediaService } from '../../media/service.ts';
import type { ProfileImage, ProfileService } from '../../profiles/service.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import {
  ProfileImageQuery,
  ProfileImageView,
  ProfileUserParams,
  SetProfileImageBody,
  SignedUrlBody,
} from '../../contract/index.ts';
import { errors, NoContent } from '../schemas.ts';

export interface ProfileRouteDeps {
  profiles: ProfileService;
  media: Pick<MediaService, 'linkSigner'>;
  auth: ReturnType<typeof registerAuth>;
}

async function toView(
  p: ProfileImage,
  media: ProfileRouteDeps['media'],
): Promise<Static<typeof ProfileImageView>> {
  const m = p.media;
  const variants = m
    ? await Promise.all(
        m.variants.map(async (v) => {
          const signed = await media.linkSigner.variant(m, v);
          return {
            name: v.name,
            width: v.width,
            height: v.height,
            url: signed.url,
            expiresAt: signed.expiresAt.toISOString(),
          };
        }),
      )
    : [];
  return {
    userId: p.userId,
    mediaId: m?.id ?? null,
    version: p.version,
    updatedAt: p.updatedAt?.toISOString() ?? null,
    placeholder: m?.placeholder ?? null,
    variants,
    pending: p.pending,
  };
}

export const profileRoutes: FastifyPluginAsyncTypebox<ProfileRouteDeps> = async (
  app,
  { profiles, media, auth },
) => {
  app.put(
    '/profile/image',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Set your profile image from a media uploaded with purpose "profile" (users only)',
        description:
          'READY: replaces the current image at once (200) and deletes the one it replaced. Not READY yet: waits (202, `pending`) and replaces it once READY; if it fails, the current image stays. The last call wins: an image still waiting from an earlier call is deleted.',
        operationId: 'setProfileImage',
        tags: ['profiles'],
        body: SetProfileImageBody,
        response: { 200: ProfileImageView, 202: ProfileImageView, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      const { swapped, image } = await profiles.set(principalOf(request), request.body.mediaId);
      void reply.status(swapped ? 200 : 202);
      return toView(image, media);
    },
  );

  app.delete(
    '/profile/image',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Remove your profile image (its media are deleted)',
        operationId: 'deleteProfileImage',
        tags: ['profiles'],
        response: { 204: NoContent, ...errors(401, 403) },
      },
    },
    async (request, reply) => {
      await profiles.remove(principalOf(request));
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/users/:userId/profile',
    {
      onRequest: auth.required,
      schema: {
        summary: 'A user’s profile image with signed URLs of its square variants (`me` for yours)',
        description:
          'Visible to the user and to people who share a circle with them; anyone else gets 404. `pending` is shown to the user only.',
        operationId: 'getProfileImage',
        tags: ['profiles'],
        params: ProfileUserParams,
        response: { 200: ProfileImageView, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => toView(await profiles.get(principalOf(request), request.params.userId), media),
  );

  app.get(
    '/users/:userId/profile-image',
    {
      onRequest: auth.required,
      schema: {
        summary: 'A user’s current profile image: 302 to a signed URL of a square variant',
        description:
          'Never a waiting or failed image; 404 when there is none (or you may not see it). The 302 is `no-store`: after a replacement the next request points to the new image.',
        operationId: 'getProfileImageFile',
        tags: ['profiles'],
        params: ProfileUserParams,
        querystring: ProfileImageQuery,
        response: {
          200: SignedUrlBody,
          302: Type.Null({ description: 'Redirect to a short-lived signed URL of the square (`Location`).' }),
          ...errors(400, 401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      const { size = 300, mode = 'redirect' } = request.query;
      const signed = await profiles.variantUrl(principalOf(request), request.params.userId, size);
      if (mode === 'url') {
        return reply
          .header('cache-control', 'no-store')
          .send({ url: signed.url, expiresAt: signed.expiresAt.toISOString() });
      }
      return reply.header('cache-control', 'no-store').redirect(signed.url, 302);
    },
  );
};
