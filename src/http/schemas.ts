/**
 * HTTP helpers around the wire contract (src/contract): the mapping from rows to views, response
 * maps of route declarations, bytes bodies for the OpenAPI document. The schemas themselves live in
 * src/contract; they are re-exported here for route files.
 */
import { Type } from '@sinclair/typebox';
import type { Principal } from '../auth/principals.ts';
import type { MediaLinks } from '../media/links.ts';
import { canSeeLocation, canSeeStoragePointer } from '../media/privacy.ts';
import type { MediaRow } from '../media/repo.ts';
import { ErrorBody, SignedUrlBody, type MediaView } from '../contract/index.ts';
import { paths } from './urls.ts';

export * from '../contract/index.ts';

/** The empty answer of a 204. */
export const NoContent = Type.Null();
/** A 304 to a conditional GET. */
export const NotModified = Type.Null({ description: 'Not modified (`If-None-Match` matched the ETag).' });

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
            masterPlaylist: paths.hlsMaster(m.id),
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
  return `${paths.variant(mediaId, name)}${qs === '' ? '' : `?${qs}`}`;
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
  304: NotModified,
  ...errors(...errorCodes),
});

/** Routes that take no credentials (a signed URL or token in the query, or nothing at all). */
export const PUBLIC = [] as const;
/** Routes that take a bearer token or, instead, a signature/token in the query. */
export const BEARER_OR_SIGNED = [{ bearer: [] }, {}] as const;
