/** Posts: an ordered set of a user's media with a caption. */
import { Type } from '@sinclair/typebox';
import { Cursor, Text, Uuid } from './common.ts';
import { MediaView } from './media.ts';

const MediaIds = Type.Array(Uuid, {
  maxItems: 100,
  description: 'The post’s media in display order (at most POST_MAX_MEDIA, default 20).',
});
const Caption = Text({ maxLength: 2200, description: 'Free text; no U+0000.' });

/** Posts per page when `limit` is not given. */
export const DEFAULT_POST_PAGE_SIZE = 20;

export const PostView = Type.Object({
  postId: Uuid,
  ownerUserId: Type.String(),
  caption: Type.String(),
  version: Type.Integer({
    description: 'Bumped by every edit; send it back with PATCH to refuse stale edits.',
  }),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
  media: Type.Array(MediaView, { description: 'In the post’s order, each ready to render.' }),
});

export const PostIdParams = Type.Object({ id: Uuid });

export const CreatePostBody = Type.Object(
  { caption: Type.Optional(Caption), mediaIds: MediaIds },
  { additionalProperties: false },
);

export const UpdatePostBody = Type.Object(
  {
    caption: Type.Optional(Caption),
    mediaIds: Type.Optional(MediaIds),
    version: Type.Optional(Type.Integer({ minimum: 1, maximum: 2147483647 })),
  },
  { additionalProperties: false },
);

export const PostListQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_POST_PAGE_SIZE })),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);

export const PostPage = Type.Object({
  items: Type.Array(PostView),
  nextCursor: Type.Union([Type.String(), Type.Null()]),
});
