/** Originals in archive storage: the restore status and request (`/media/{id}/restore`). */
import { Type } from '@sinclair/typebox';
import { Uuid } from './common.ts';

export const ArchiveStates = ['readable', 'archived', 'restoring', 'restored'] as const;

/** Where a media's original stands in the store's storage classes. */
export const RestoreStatus = Type.Object(
  {
    mediaId: Uuid,
    state: Type.Union(
      ArchiveStates.map((s) => Type.Literal(s)),
      {
        description:
          '`readable`: downloads and processing work now; `archived`: in an archive class (S3 GLACIER / DEEP_ARCHIVE), a restore is needed; `restoring`: a restore is running (hours); `restored`: a temporary copy is readable until `restoredUntil`.',
      },
    ),
    storageClass: Type.Union([Type.String(), Type.Null()], {
      description: 'The storage class as the store names it (null: a store without classes).',
    }),
    restoredUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
      description: 'When the restored copy expires (`restored` only).',
    }),
  },
  { additionalProperties: false },
);
