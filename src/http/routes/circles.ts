import type { MediaService } from '../../media/service.ts';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { CircleRow, ShareRow } from '../../circles/repo.ts';
import type { CircleService } from '../../circles/service.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import { errors, ListResponse, Text, toMediaView, Uuid } from '../schemas.ts';

export interface CircleRouteDeps {
  circles: CircleService;
  /** Signs the URLs of each media record. */
  media: Pick<MediaService, 'links'>;
  auth: ReturnType<typeof registerAuth>;
}

const UserId = Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000]*$' });

export const CircleView = Type.Object({
  circleId: Uuid,
  name: Type.String(),
  ownerUserId: Type.String(),
  members: Type.Array(Type.String(), { description: 'Members besides the owner, in the order added.' }),
  createdAt: Type.String({ format: 'date-time' }),
});

export const ShareView = Type.Object({
  shareId: Uuid,
  circleId: Uuid,
  sharedBy: Type.String(),
  mediaId: Type.Union([Uuid, Type.Null()]),
  postId: Type.Union([Uuid, Type.Null()]),
  originals: Type.Boolean({ description: 'Members may download the original as uploaded (EXIF included).' }),
  sharedAt: Type.String({ format: 'date-time' }),
});

const toCircleView = (c: CircleRow): Static<typeof CircleView> => ({
  circleId: c.id,
  name: c.name,
  ownerUserId: c.owner_user_id,
  members: c.members,
  createdAt: c.created_at.toISOString(),
});

const toShareView = (s: ShareRow): Static<typeof ShareView> => ({
  shareId: s.id,
  circleId: s.circle_id,
  sharedBy: s.shared_by,
  mediaId: s.media_id,
  postId: s.post_id,
  originals: s.originals,
  sharedAt: s.shared_at.toISOString(),
});

const CircleParams = Type.Object({ id: Uuid });

export const circleRoutes: FastifyPluginAsyncTypebox<CircleRouteDeps> = async (
  app,
  { circles, media, auth },
) => {
  const tags = ['circles'];

  app.post(
    '/circles',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Create a circle (you are its owner)',
        operationId: 'createCircle',
        tags,
        body: Type.Object({ name: Text({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
        response: { 201: CircleView, ...errors(400, 401, 403) },
      },
    },
    async (request, reply) => {
      void reply.status(201);
      return toCircleView(await circles.create(principalOf(request), request.body.name));
    },
  );

  app.get(
    '/circles',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Circles you own or belong to',
        operationId: 'listCircles',
        tags,
        response: { 200: Type.Object({ items: Type.Array(CircleView) }), ...errors(401, 403) },
      },
    },
    async (request) => ({ items: (await circles.list(principalOf(request))).map(toCircleView) }),
  );

  app.get(
    '/circles/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'A circle and its members (owner and members only)',
        operationId: 'getCircle',
        tags,
        params: CircleParams,
        response: { 200: CircleView, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => toCircleView(await circles.get(principalOf(request), request.params.id)),
  );

  app.delete(
    '/circles/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Delete a circle (owner): everything shared with it is unshared',
        operationId: 'deleteCircle',
        tags,
        params: CircleParams,
        response: { 204: Type.Null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await circles.delete(principalOf(request), request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/circles/:id/members',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Add a member (owner)',
        operationId: 'addCircleMember',
        tags,
        params: CircleParams,
        body: Type.Object({ userId: UserId }, { additionalProperties: false }),
        response: { 200: CircleView, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) =>
      toCircleView(await circles.addMember(principalOf(request), request.params.id, request.body.userId)),
  );

  app.delete(
    '/circles/:id/members/:userId',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Remove a member (owner), or leave (yourself); what they shared leaves with them',
        operationId: 'removeCircleMember',
        tags,
        params: Type.Object({ id: Uuid, userId: UserId }),
        response: { 204: Type.Null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await circles.removeMember(principalOf(request), request.params.id, request.params.userId);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/circles/:id/shares',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Share a media or a post you own with the circle (members only)',
        operationId: 'shareWithCircle',
        tags,
        params: CircleParams,
        body: Type.Object(
          {
            mediaId: Type.Optional(Uuid),
            postId: Type.Optional(Uuid),
            originals: Type.Optional(Type.Boolean({ default: false })),
          },
          { additionalProperties: false },
        ),
        response: { 201: ShareView, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      void reply.status(201);
      return toShareView(await circles.share(principalOf(request), request.params.id, request.body));
    },
  );

  app.delete(
    '/circles/:id/shares/:shareId',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Take a share back (who shared it, or the owner)',
        operationId: 'unshareFromCircle',
        tags,
        params: Type.Object({ id: Uuid, shareId: Uuid }),
        response: { 204: Type.Null(), ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await circles.unshare(principalOf(request), request.params.id, request.params.shareId);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/circles/:id/media',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Media shared with the circle (directly or on shared posts), newest share first',
        operationId: 'listCircleMedia',
        tags,
        params: CircleParams,
        querystring: Type.Object(
          {
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50 })),
            cursor: Type.Optional(Type.String({ maxLength: 512 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: ListResponse, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const page = await circles.media(principal, request.params.id, {
        limit: request.query.limit ?? 50,
        cursor: request.query.cursor,
      });
      const items = await Promise.all(
        page.items.map(async (m) => toMediaView(m, principal, await media.links(m, principal))),
      );
      return { items, nextCursor: page.nextCursor };
    },
  );
};
