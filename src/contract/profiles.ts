/** Profile images: a user's avatar, square variants, replaced only by a READY image. */
import { Type } from '@sinclair/typebox';
import { Nullable, UserIdParam, Uuid } from './common.ts';
import { MediaStatusSchema } from './media.ts';

export const SetProfileImageBody = Type.Object(
  {
    mediaId: Type.String({
      format: 'uuid',
      description:
        'A media of yours uploaded with `purpose: "profile"` (an image). READY: it replaces the current image at once (200); still processing: it waits and replaces it once READY (202), or is dropped if it fails (the current image stays).',
    }),
  },
  { additionalProperties: false },
);

export const ProfileImageVariant = Type.Object({
  name: Type.String({ description: 'The side in pixels: `150`, `300` or `600` (300 at 2×).' }),
  width: Type.Integer(),
  height: Type.Integer(),
  url: Type.String({
    description:
      'Signed URL of the square WebP (no credentials needed: `<img src>`). The same within a signing window; a new image has new URLs.',
  }),
  expiresAt: Type.String({ format: 'date-time' }),
});

export const ProfileImageView = Type.Object({
  userId: Type.String(),
  mediaId: Nullable(Uuid),
  version: Type.Integer({ description: 'Bumped by every replacement: part of a client-side cache key.' }),
  updatedAt: Nullable(Type.String({ format: 'date-time' })),
  placeholder: Nullable(Type.String({ description: 'ThumbHash (base64) to paint before the image loads.' })),
  variants: Type.Array(ProfileImageVariant, { description: 'Largest first; empty when there is no image.' }),
  pending: Nullable(
    Type.Object(
      { mediaId: Uuid, status: MediaStatusSchema },
      { description: 'Your image waiting to replace the current one once READY (shown to you only).' },
    ),
  ),
});

export const ProfileUserParams = Type.Object({ userId: UserIdParam });

export const ProfileImageQuery = Type.Object(
  {
    // An enum on an integer (not a union of literals): query strings are coerced by type.
    size: Type.Optional(
      Type.Unsafe<150 | 300 | 600>({
        type: 'integer',
        enum: [150, 300, 600],
        default: 300,
        description: 'Side of the square in pixels.',
      }),
    ),
    mode: Type.Optional(
      Type.Union([Type.Literal('redirect'), Type.Literal('url')], {
        default: 'redirect',
        description: '`redirect`: 302 to the signed URL; `url`: that URL as JSON `{url, expiresAt}`.',
      }),
    ),
  },
  { additionalProperties: false },
);
