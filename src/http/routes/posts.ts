import type { Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Principal } from '../../auth/principals.ts';
import type { MediaService } from '../../media/service.ts';
import type { PostService, PostWithMedia } from '../../posts/service.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import {
  CreatePostBody,
  DEFAULT_POST_PAGE_SIZE,
  IdempotencyHeaders,
  PostIdParams,
  PostListQuery,
  PostPage,
  PostView,
  UpdatePostBody,
  UserParams,
} from '../../contract/index.ts';
import { errors, NoContent, toMediaView } from '../schemas.ts';

export interface PostRouteDeps {
  posts: PostService;
  /** Signs the URLs of each media record. */
  media: Pick<MediaService, 'links'>;
  auth: ReturnType<typeof registerAuth>;
}

type PostView = Static<typeof PostView>;

async function toPostView(
  { post, media }: PostWithMedia,
  viewer: Principal,
  links: PostRouteDeps['media'],
): Promise<PostView> {
  return {
    postId: post.id,
    ownerUserId: post.owner_user_id,
    caption: post.caption,
    version: post.version,
    createdAt: post.created_at.toISOString(),
    updatedAt: post.updated_at.toISOString(),
    media: await Promise.all(media.map(async (m) => toMediaView(m, viewer, await links.links(m, viewer)))),
  };
}

export const postRoutes: FastifyPluginAsyncTypebox<PostRouteDeps> = async (app, { posts, media, auth }) => {
  app.post(
    '/posts',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Create a post from uploaded media (users only)',
        operationId: 'createPost',
        tags: ['posts'],
        headers: IdempotencyHeaders,
        body: CreatePostBody,
        response: { 200: PostView, 201: PostView, ...errors(400, 401, 403, 409) },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const result = await posts.create(principal, request.body, request.headers['idempotency-key']);
      void reply.status(result.created ? 201 : 200);
      return toPostView(result.post, principal, media);
    },
  );

  app.get(
    '/posts/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Get a post with its media in order',
        operationId: 'getPost',
        tags: ['posts'],
        params: PostIdParams,
        response: { 200: PostView, ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      return toPostView(await posts.get(principal, request.params.id), principal, media);
    },
  );

  app.patch(
    '/posts/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Edit a post: caption, and/or its whole media list in the new order',
        operationId: 'updatePost',
        tags: ['posts'],
        params: PostIdParams,
        body: UpdatePostBody,
        response: { 200: PostView, ...errors(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      return toPostView(await posts.update(principal, request.params.id, request.body), principal, media);
    },
  );

  app.delete(
    '/posts/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Delete a post and its media',
        operationId: 'deletePost',
        tags: ['posts'],
        params: PostIdParams,
        response: { 204: NoContent, ...errors(400, 401, 403, 404) },
      },
    },
    async (request, reply) => {
      await posts.delete(principalOf(request), request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/users/:userId/posts',
    {
      onRequest: auth.required,
      schema: {
        summary: 'List a user’s posts (`me` for yourself), newest first',
        operationId: 'listUserPosts',
        tags: ['posts'],
        params: UserParams,
        querystring: PostListQuery,
        response: {
          200: PostPage,
          ...errors(400, 401, 403, 404),
        },
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const page = await posts.list(principal, request.params.userId, {
        limit: request.query.limit ?? DEFAULT_POST_PAGE_SIZE,
        cursor: request.query.cursor,
      });
      const items = await Promise.all(page.items.map((p) => toPostView(p, principal, media)));
      return { items, nextCursor: page.nextCursor };
    },
  );
};
