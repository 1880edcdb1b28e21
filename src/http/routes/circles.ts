import type { MediaService } from '../../media/service.ts';
import type { Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { CircleRow, ShareRow } from '../../circles/repo.ts';
import type { CircleService } from '../../circles/service.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import {
  AddMemberBody,
  CircleList,
  CircleMediaQuery,
  CircleMemberParams,
  CircleParams,
  CircleShareParams,
  CircleView,
  CreateCircleBody,
  DEFAULT_CIRCLE_PAGE_SIZE,
  ListResponse,
  ShareBody,
  ShareView,
} from '../../contract/index.ts';
import { errors, NoContent, toMediaView } from '../schemas.ts';

export interface CircleRouteDeps {
  circles: CircleService;
  /** Signs the URLs of each media record. */
  media: Pick<MediaService, 'links'>;
  auth: ReturnType<typeof registerAuth>;
}

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
        body: CreateCircleBody,
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
        response: { 200: CircleList, ...errors(401, 403) },
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
        response: { 204: NoContent, ...errors(400, 401, 403, 404) },
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
        body: AddMemberBody,
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
        params: CircleMemberParams,
        response: { 204: NoContent, ...errors(400, 401, 403, 404) },
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
        body: ShareBody,
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
        params: CircleShareParams,
        response: { 204: NoContent, ...errors(400, 401, 403, 404) },
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
        querystring: CircleMediaQuery,
        response: { 200: ListResponse, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const page = await circles.media(principal, request.params.id, {
        limit: request.query.limit ?? DEFAULT_CIRCLE_PAGE_SIZE,
        cursor: request.query.cursor,
      });
      const items = await Promise.all(
        page.items.map(async (m) => toMediaView(m, principal, await media.links(m, principal))),
      );
      return { items, nextCursor: page.nextCursor };
    },
  );
};
