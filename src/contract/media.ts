/** Media records, upload sessions, listing, status, delivery and usage on the wire. */
import { Type, type Static } from '@sinclair/typebox';
import { Cursor, Identifier, MediaError, Nullable, Sha256, Text, UserIdParam, Uuid } from './common.ts';
import { LISTABLE_STATUSES, MEDIA_STATUSES } from './statuses.ts';

export * from './statuses.ts';

export const MediaStatusSchema = Type.Union(MEDIA_STATUSES.map((s) => Type.Literal(s)));
export const ListableStatus = Type.Union(LISTABLE_STATUSES.map((s) => Type.Literal(s)));

export const MediaPurposeSchema = Type.Union(
  [Type.Literal('library'), Type.Literal('post'), Type.Literal('profile')],
  {
    description:
      'What the media is for; it decides the allowed types, the size limit, the variants and cleanup. `library` (default): images and videos, kept until deleted. `post` (users only): removed if no post takes it within POST_MEDIA_GRACE_SECONDS. `profile` (users only): images up to MAX_PROFILE_IMAGE_BYTES, square variants 600/300/150; set with PUT /profile/image.',
  },
);

export const CreateSessionBody = Type.Object(
  {
    fileName: Text({ minLength: 1, maxLength: 1024 }),
    mimeType: Text({ minLength: 3, maxLength: 255 }),
    bytes: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
    sha256: Type.Optional(Sha256),
    mediaType: Type.Optional(Type.Union([Type.Literal('image'), Type.Literal('video')])),
    deviceId: Type.Optional(Uuid),
    cameraId: Type.Optional(
      Identifier('Camera on the device; defaults to "default" for device uploads.', 64),
    ),
    capturedAt: Type.Optional(Type.String({ format: 'date-time' })),
    reason: Type.Optional(Text({ maxLength: 200 })),
    messageId: Type.Optional(
      Identifier('Device-side id of this capture; (device, camera, messageId) is the idempotency key.'),
    ),
    purpose: Type.Optional(MediaPurposeSchema),
    circleId: Type.Optional(
      Type.String({
        format: 'uuid',
        description: 'Users: share the new media with this circle (they must be its owner or a member).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreateSessionBody = Static<typeof CreateSessionBody>;

/** A signed PUT: the shape of a single upload and, with its number, of every part URL. */
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

export const VariantView = Type.Object(
  {
    name: Type.String({ description: 'Longest edge in px the variant was made for: 150, 300, 600, 1200.' }),
    format: Type.String({ description: 'webp (default) or avif.' }),
    contentType: Type.String(),
    width: Type.Integer(),
    height: Type.Integer(),
    bytes: Type.Integer(),
    sha256: Nullable(
      Type.String({
        pattern: '^[0-9a-f]{64}$',
        description:
          'Lower-case hex SHA-256 of the variant bytes (the `v` of its URL). Null only for a variant stored under a key that is not content-addressed, which Mediary never writes.',
      }),
    ),
    url: Type.String({
      description:
        'Content-addressed API path that serves the variant (with credentials): `/api/v1/media/{id}/variants/{name}?v={sha256}` (redirect; add `mode=proxy` for the bytes, `mode=url` for a signed URL as JSON). A new URL whenever the bytes change.',
    }),
    downloadUrl: Type.String({
      description:
        'A signed URL of the variant bytes that needs no credentials: put it in `<img src>` or `fetch` it from a page (local store: served by the API, CORS_ORIGINS; S3: the bucket, S3_CORS_ORIGINS). Valid until the record `urlsExpireAt`.',
    }),
  },
  { description: 'A resized, upright, metadata-free rendition of an image.' },
);

export const RenditionView = Type.Object(
  {
    name: Type.String({ description: 'Quality rung: 360p, 720p, 1080p, 2160p (never above the source).' }),
    width: Type.Integer(),
    height: Type.Integer(),
    bitrate: Type.Integer({ description: 'Peak bandwidth announced in the master playlist, bits/s.' }),
    codecs: Type.String({ description: 'RFC 6381 codecs, e.g. avc1.64001f,mp4a.40.2.' }),
  },
  { description: 'One rendition of the HLS ladder of a video.' },
);

export const HlsView = Type.Object({
  masterPlaylist: Type.String({
    description:
      'API path of the master playlist (GET with credentials); every URI inside carries a playback token.',
  }),
  renditions: Type.Array(RenditionView),
});

export const GpsView = Type.Object({
  latitude: Type.Number(),
  longitude: Type.Number(),
  altitude: Type.Optional(Type.Number()),
});

export const MediaView = Type.Object(
  {
    mediaId: Uuid,
    status: MediaStatusSchema,
    purpose: MediaPurposeSchema,
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
    error: Nullable(MediaError),
    storageBackend: Type.String(),
    storageUri: Type.Optional(
      Type.String({
        description:
          'Where the original is stored (gs://bucket/key, s3://bucket/key or the local path); present only in responses to the owning user.',
      }),
    ),
    downloadUrl: Nullable(
      Type.String({
        description:
          'A signed URL of the original that needs no credentials: usable as is in `<img>`/`<video>` or with `fetch` from a page, whatever the store. Null while there is nothing to download. Valid until `urlsExpireAt`.',
      }),
    ),
    urlsExpireAt: Nullable(
      Type.String({
        format: 'date-time',
        description:
          'When `downloadUrl` and the variants’ `downloadUrl` stop working (at most DOWNLOAD_URL_TTL_SECONDS, at least three quarters of it after the response); fetch the record again for fresh ones. Null when the record carries no signed URL.',
      }),
    ),
    uploadExpiresAt: Type.String({ format: 'date-time' }),
    uploadedAt: Nullable(Type.String({ format: 'date-time' })),
    createdAt: Type.String({ format: 'date-time' }),
    updatedAt: Type.String({ format: 'date-time' }),
    variants: Type.Array(VariantView),
    placeholder: Nullable(
      Type.String({ description: 'ThumbHash of the image (of a video: its poster), base64.' }),
    ),
    hls: Nullable(HlsView),
    /** EXIF location; present only in responses to the owning user. */
    gps: Type.Optional(Nullable(GpsView)),
  },
  { description: 'A media record as clients see it (never storage secrets or signatures).' },
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
  error: Nullable(MediaError),
  updatedAt: Type.String({ format: 'date-time' }),
  attempts: Type.Integer({ description: 'Processing attempts started for the current run.' }),
  progress: Type.Integer({ minimum: 0, maximum: 100, description: 'Processing progress, percent.' }),
  lastError: Nullable(
    Type.Object(
      { code: Type.String(), message: Type.String(), at: Type.Optional(Type.String()) },
      { description: 'The last attempt error, also while a retry is pending.' },
    ),
  ),
});

/** Items per page when `limit` is not given. */
export const DEFAULT_PAGE_SIZE = 50;

export const ListQuery = Type.Object(
  {
    // Optional on the wire (the OpenAPI must not call it required); the default fills it in.
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: DEFAULT_PAGE_SIZE })),
    cursor: Type.Optional(Cursor),
    cameraId: Type.Optional(Text({ maxLength: 64 })),
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
export const DeviceListParams = Type.Object({ deviceId: Type.Union([Uuid, Type.Literal('me')]) });
export const UserParams = Type.Object({ userId: UserIdParam });
export const DeviceParams = Type.Object({ deviceId: Uuid });

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
/** `complete` takes no body, `{}`, or the parts. */
export const OptionalCompleteBody = Type.Union([Type.Null(), CompleteBody]);

/** `PUT /media/{id}/upload`: the signature of `upload.url`, or none with a bearer token. */
export const UploadQuery = Type.Object(
  {
    expires: Type.Optional(Type.String({ pattern: '^\\d{1,12}$' })),
    sig: Type.Optional(Type.String({ maxLength: 128 })),
  },
  { additionalProperties: false },
);
export const UploadResponse = Type.Object({
  mediaId: Uuid,
  status: Type.String(),
  bytes: Type.Integer(),
  sha256: Type.Union([Type.String(), Type.Null()]),
});

/** `?mode=redirect|url|proxy` for routes that deliver stored bytes. */
export const DeliveryQuery = Type.Object(
  {
    // Optional on the wire (the OpenAPI must not call it required); the default fills it in.
    mode: Type.Optional(
      Type.Union([Type.Literal('redirect'), Type.Literal('url'), Type.Literal('proxy')], {
        default: 'redirect',
        description:
          '`redirect`: 302 to a signed URL (a page on another origin cannot `fetch` through it to an S3 bucket: Chromium sends `Origin: null` after a cross-origin redirect); `url`: that signed URL as JSON `{url, expiresAt}`; `proxy`: the bytes through the API.',
      }),
    ),
  },
  { additionalProperties: false },
);

/** `?v=` on a variant URL: the SHA-256 of the bytes it names. */
export const VariantVersion = Type.String({
  pattern: '^[0-9a-f]{64}$',
  description:
    'SHA-256 of the variant bytes, as in the media record `url`. With mode=proxy: the current hash → the bytes, cacheable forever by the caller (`private, max-age=31536000, immutable`); a stale one (reprocessed) → `302` to the current URL; none → `private, no-cache` (revalidate with the ETag). Redirect mode: validated, otherwise ignored (the signed URL is for the current bytes). Never grants access.',
});

/** The delivery query of a variant: `mode`, and the content address `v`. */
export const VariantQuery = Type.Object(
  { ...DeliveryQuery.properties, v: Type.Optional(VariantVersion) },
  { additionalProperties: false },
);
export const VariantParams = Type.Object({ id: Uuid, name: Type.String({ pattern: '^[a-z0-9]{1,32}$' }) });

/** `?mode=url`: a signed URL of the bytes that needs no credentials. */
export const SignedUrlBody = Type.Object({
  url: Type.String({
    description: 'Signed URL of the bytes; usable without credentials (img, video, fetch).',
  }),
  expiresAt: Type.String({ format: 'date-time', description: 'When the URL stops working.' }),
});

const Amounts = {
  storedBytes: Type.Integer({
    description: 'Declared bytes of media not DELETED or FAILED (open sessions reserve theirs).',
  }),
  openSessions: Type.Integer({ description: 'PENDING upload sessions.' }),
};
export const UsageView = Type.Object({
  ...Amounts,
  limits: Type.Object(
    {
      storedBytes: Type.Integer({ description: '0 = no limit.' }),
      openSessions: Type.Integer({ description: '0 = no limit.' }),
    },
    { description: 'QUOTA_USER_* or QUOTA_DEVICE_*: checked when a session is created.' },
  ),
});
