import { Type, type Static } from '@sinclair/typebox';
import type { Principal } from '../auth/principals.ts';
import type { MediaLinks } from '../media/links.ts';
import { canSeeLocation, canSeeStoragePointer } from '../media/privacy.ts';
import { LISTABLE_STATUSES, type MediaRow } from '../media/repo.ts';

export const Uuid = Type.String({ format: 'uuid', description: 'A UUID.' });
const Sha256 = Type.String({
  pattern: '^[0-9a-fA-F]{64}$',
  description: 'Lower-case hex SHA-256 of the whole file.',
});
const Identifier = (description: string, max = 128) =>
  Type.String({ pattern: `^[A-Za-z0-9][A-Za-z0-9_.-]{0,${max - 1}}$`, description });
/** Free text Postgres can store: any characters but NUL (text columns cannot hold U+0000). */
export const Text = (opts: { minLength?: number; maxLength: number; description?: string }) =>
  Type.String({ ...opts, pattern: '^[^\\u0000]*$' });
export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) =>
  Type.Union([t, Type.Null()]);

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

export const MediaPurposeSchema = Type.Union([Type.Literal('library'), Type.Literal('post')], {
  description:
    'What the media is for. `post` (users only): removed if no post takes it within POST_MEDIA_GRACE_SECONDS. `library` (default): kept until deleted.',
});

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
    error: Nullable(Type.Object({ code: Type.String(), message: Type.String() })),
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
  error: Nullable(Type.Object({ code: Type.String(), message: Type.String() })),
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
    cursor: Type.Optional(Type.String({ maxLength: 512 })),
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

/** The record as clients see it; `links` are its signed URLs (MediaService.links). */
export function toMediaView(m: MediaRow, viewer: Principal | null, links: MediaLinks): MediaView {
  const expiries = [links.original, ...Object.values(links.variants)]
    .filter((u) => u !== null)
    .map((u) => u.expiresAt.getTime());
  const view: MediaView = {
    mediaId: m.id,
    status: m.status,
    purpose: m.purpose,
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
    downloadUrl: links.original?.url ?? null,
    urlsExpireAt: expiries.length > 0 ? new Date(Math.min(...expiries)).toISOString() : null,
    uploadExpiresAt: m.upload_expires_at.toISOString(),
    uploadedAt: m.uploaded_at?.toISOString() ?? null,
    createdAt: m.created_at.toISOString(),
    updatedAt: m.updated_at.toISOString(),
    variants: (m.variants ?? []).map((v) => ({
      name: v.name,
      format: v.format,
      contentType: v.format === 'avif' ? 'image/avif' : 'image/webp',
      width: v.width,
      height: v.height,
      bytes: v.bytes,
      sha256: v.sha256,
      url: variantUrl(m.id, v.name, v.sha256),
      downloadUrl: links.variants[v.name]?.url ?? '',
    })),
    placeholder: m.placeholder ?? null,
    hls:
      m.hls_master_key && m.status === 'READY'
        ? {
            masterPlaylist: `/api/v1/media/${m.id}/hls/master.m3u8`,
            renditions: (m.renditions ?? []).map((r) => ({
              name: r.name,
              width: r.width,
              height: r.height,
              bitrate: r.bitrate,
              codecs: r.codecs,
            })),
          }
        : null,
  };
  if (canSeeLocation(viewer, m)) view.gps = m.gps ?? null;
  if (canSeeStoragePointer(viewer, m)) view.storageUri = m.storage_uri;
  return view;
}

/** Any other error a route can answer: 413/415 body errors, 429, 503 (with `Retry-After`), 500. */
const OtherError = Type.Object(ErrorBody.properties, {
  description:
    'Any other error (a body too large or not JSON, 429, 503 with Retry-After, 500): the same shape.',
});

/** Standard error responses for a route's schema (and the same shape for any other status). */
export const errors = (...codes: number[]) => ({
  ...Object.fromEntries(codes.map((c) => [c, ErrorBody])),
  default: OtherError,
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

/** `?v=` on a variant URL: the SHA-256 of the bytes it names (see {@link variantUrl}). */
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

/**
 * The API path of a variant, content-addressed by `?v=<sha256>` so the bytes behind one URL never
 * change (without `v` when the key carries no hash); `mode` is added when given.
 */
export function variantUrl(
  mediaId: string,
  name: string,
  sha256: string | null,
  mode?: 'redirect' | 'url' | 'proxy',
): string {
  const query = new URLSearchParams();
  if (sha256 !== null) query.set('v', sha256);
  if (mode !== undefined) query.set('mode', mode);
  const qs = query.toString();
  return `/api/v1/media/${mediaId}/variants/${name}${qs === '' ? '' : `?${qs}`}`;
}

/** Bytes of a file (a request or response body that is not JSON). */
export const Binary = Type.Unsafe<unknown>({ type: 'string', format: 'binary' });

/**
 * A response whose body is bytes of the given media types (media ranges such as `image/*` allowed).
 * Declared per content type, so the OpenAPI document says what is served instead of JSON.
 */
export const bytesResponse = (description: string, ...contentTypes: string[]) => ({
  description,
  content: Object.fromEntries(contentTypes.map((ct) => [ct, { schema: Binary }])),
});

/** `?mode=url`: a signed URL of the bytes that needs no credentials. */
export const SignedUrlBody = Type.Object({
  url: Type.String({
    description: 'Signed URL of the bytes; usable without credentials (img, video, fetch).',
  }),
  expiresAt: Type.String({ format: 'date-time', description: 'When the URL stops working.' }),
});

/**
 * Responses of a delivery route: a signed redirect, the signed URL as JSON (`mode=url`), or the
 * bytes (whole, ranged, not modified).
 */
export const deliveryResponses = (contentTypes: string[], ...errorCodes: number[]) => ({
  200: {
    description: 'The bytes (`mode=proxy`), or the signed URL as JSON (`mode=url`).',
    content: {
      ...bytesResponse('', ...contentTypes).content,
      'application/json': { schema: SignedUrlBody },
    },
  },
  206: bytesResponse('The requested range (`mode=proxy` with `Range`).', ...contentTypes),
  302: Type.Null({ description: 'Redirect to a short-lived signed URL of the bytes (`Location`).' }),
  304: Type.Null({ description: 'Not modified (`If-None-Match` matched the ETag).' }),
  ...errors(...errorCodes),
});

/** Routes that take no credentials (a signed URL or token in the query, or nothing at all). */
export const PUBLIC = [] as const;
/** Routes that take a bearer token or, instead, a signature/token in the query. */
export const BEARER_OR_SIGNED = [{ bearer: [] }, {}] as const;
