import { Type, type Static } from '@sinclair/typebox';
import type { Principal } from '../auth/principals.ts';
import { LISTABLE_STATUSES, type MediaRow } from '../media/repo.ts';

export const Uuid = Type.String({ format: 'uuid', description: 'A UUID.' });
const Sha256 = Type.String({
  pattern: '^[0-9a-fA-F]{64}$',
  description: 'Lower-case hex SHA-256 of the whole file.',
});
const Identifier = (description: string, max = 128) =>
  Type.String({ pattern: `^[A-Za-z0-9][A-Za-z0-9_.-]{0,${max - 1}}$`, description });
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      requestId: Type.Optional(Type.String()),
    }),
  },
  { description: 'Every error response has this shape.' },
);

export const MediaStatusSchema = Type.Union(
  ['PENDING', 'UPLOADED', 'PROCESSING', 'READY', 'FAILED', 'DELETED'].map((s) => Type.Literal(s)),
);
export const ListableStatus = Type.Union(LISTABLE_STATUSES.map((s) => Type.Literal(s)));

export const CreateSessionBody = Type.Object(
  {
    fileName: Type.String({ minLength: 1, maxLength: 1024 }),
    mimeType: Type.String({ minLength: 3, maxLength: 255 }),
    bytes: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    sha256: Type.Optional(Sha256),
    mediaType: Type.Optional(Type.Union([Type.Literal('image'), Type.Literal('video')])),
    deviceId: Type.Optional(Uuid),
    cameraId: Type.Optional(
      Identifier('Camera on the device; defaults to "default" for device uploads.', 64),
    ),
    capturedAt: Type.Optional(Type.String({ format: 'date-time' })),
    reason: Type.Optional(Type.String({ maxLength: 200 })),
    messageId: Type.Optional(
      Identifier('Device-side id of this capture; (device, camera, messageId) is the idempotency key.'),
    ),
  },
  { additionalProperties: false },
);
export type CreateSessionBody = Static<typeof CreateSessionBody>;

export const PutInstructions = Type.Object({
  method: Type.Literal('PUT'),
  url: Type.String(),
  headers: Type.Record(Type.String(), Type.String()),
  expiresAt: Type.String({ format: 'date-time' }),
});
export const MultipartInstructions = Type.Object(
  {
    method: Type.Literal('MULTIPART'),
    partSize: Type.Integer({ description: 'Bytes in every part but the last.' }),
    partCount: Type.Integer({ minimum: 1, maximum: 10000 }),
    expiresAt: Type.String({ format: 'date-time', description: 'When the upload session ends.' }),
  },
  { description: 'Files above the multipart threshold: ask POST /media/{id}/parts for part URLs.' },
);
export const UploadInstructions = Type.Union([PutInstructions, MultipartInstructions]);

export const MediaView = Type.Object(
  {
    mediaId: Uuid,
    status: MediaStatusSchema,
    mediaType: Type.String(),
    mimeType: Type.String(),
    detectedMimeType: Nullable(Type.String()),
    fileName: Type.String(),
    bytes: Type.Integer(),
    sha256: Nullable(Type.String()),
    sha256Verified: Type.Boolean({
      description: 'True once the stored bytes were hashed or store-verified; false while pending.',
    }),
    ownerUserId: Nullable(Type.String()),
    deviceId: Nullable(Type.String()),
    cameraId: Nullable(Type.String()),
    messageId: Nullable(Type.String()),
    capturedAt: Type.String({ format: 'date-time' }),
    reason: Nullable(Type.String()),
    width: Nullable(Type.Integer()),
    height: Nullable(Type.Integer()),
    durationMs: Nullable(Type.Integer()),
    metadata: Type.Record(Type.String(), Type.Unknown()),
    error: Nullable(Type.Object({ code: Type.String(), message: Type.String() })),
    storageBackend: Type.String(),
    uploadExpiresAt: Type.String({ format: 'date-time' }),
    uploadedAt: Nullable(Type.String({ format: 'date-time' })),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
  },
  { description: 'A media record as clients see it (never storage secrets).' },
);
export type MediaView = Static<typeof MediaView>;

export const SessionResponse = Type.Object({
  mediaId: Uuid,
  status: MediaStatusSchema,
  upload: Nullable(UploadInstructions),
  media: MediaView,
});

export const StatusResponse = Type.Object({
  mediaId: Uuid,
  status: MediaStatusSchema,
  error: Nullable(Type.Object({ code: Type.String(), message: Type.String() })),
  updatedAt: Type.String({ format: 'date-time' }),
});

export const ListQuery = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 100, default: 50 }),
    cursor: Type.Optional(Type.String({ maxLength: 512 })),
    cameraId: Type.Optional(Type.String({ maxLength: 64 })),
    status: Type.Optional(ListableStatus),
    since: Type.Optional(Type.String({ format: 'date-time' })),
    until: Type.Optional(Type.String({ format: 'date-time' })),
  },
  { additionalProperties: false },
);

export const ListResponse = Type.Object({
  items: Type.Array(MediaView),
  nextCursor: Nullable(Type.String()),
});

export const MediaIdParams = Type.Object({ id: Uuid });

export const PartNumber = Type.Integer({ minimum: 1, maximum: 10000 });
export const CompleteBody = Type.Object(
  {
    parts: Type.Optional(
      Type.Array(
        Type.Object(
          { partNumber: PartNumber, etag: Type.String({ minLength: 1, maxLength: 200 }) },
          { additionalProperties: false },
        ),
        { minItems: 1, maxItems: 10000, description: 'Multipart uploads only: every part, with its ETag.' },
      ),
    ),
  },
  { additionalProperties: false },
);

export function toMediaView(m: MediaRow, _viewer: Principal | null): MediaView {
  return {
    mediaId: m.id,
    status: m.status,
    mediaType: m.media_type,
    mimeType: m.mime_type,
    detectedMimeType: m.detected_mime_type,
    fileName: m.file_name,
    bytes: m.bytes,
    sha256: m.content_sha256 ?? m.sha256,
    sha256Verified: m.content_sha256 !== null,
    ownerUserId: m.owner_user_id,
    deviceId: m.device_id,
    cameraId: m.camera_id,
    messageId: m.message_id,
    capturedAt: m.captured_at.toISOString(),
    reason: m.reason,
    width: m.width,
    height: m.height,
    durationMs: m.duration_ms,
    metadata: m.metadata,
    error: m.error,
    storageBackend: m.storage_backend,
    uploadExpiresAt: m.upload_expires_at.toISOString(),
    uploadedAt: m.uploaded_at?.toISOString() ?? null,
    createdAt: m.created_at.toISOString(),
    updatedAt: m.updated_at.toISOString(),
  };
}

/** Standard error responses for a route's schema. */
export const errors = (...codes: number[]) => Object.fromEntries(codes.map((c) => [c, ErrorBody]));
