/** Circles: a user's group, and what its members share with it. */
import { Type } from '@sinclair/typebox';
import { Cursor, Text, Uuid } from './common.ts';

const UserId = Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000]*$' });

/** Shared media per page when `limit` is not given. */
export const DEFAULT_CIRCLE_PAGE_SIZE = 50;

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

export const CircleParams = Type.Object({ id: Uuid });
export const CircleMemberParams = Type.Object({ id: Uuid, userId: UserId });
export const CircleShareParams = Type.Object({ id: Uuid, shareId: Uuid });

export const CreateCircleBody = Type.Object(
  { name: Text({ minLength: 1, maxLength: 200 }) },
  { additionalProperties: false },
);
export const CircleList = Type.Object({ items: Type.Array(CircleView) });
export const AddMemberBody = Type.Object({ userId: UserId }, { additionalProperties: false });

export const ShareBody = Type.Object(
  {
    mediaId: Type.Optional(Uuid),
    postId: Type.Optional(Uuid),
    originals: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);

export const CircleMediaQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_CIRCLE_PAGE_SIZE })),
    cursor: Type.Optional(Cursor),
  },
  { additionalProperties: false },
);
