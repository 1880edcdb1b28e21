import { createHash, randomUUID } from 'node:crypto';

/**
 * Where a media's objects live in the store and what content type each is stored with: the
 * original, its image variants (video posters are image variants too) and the objects of an HLS
 * run. Media, processing and operations (storage migration, sweeper) all use this one module, so
 * a key shape is written down once. No dependencies beyond node:crypto.
 *
 *   original    <device_id>/<camera_id>/<YYYY-MM-DD>/<message_id>.<ext>   (device captures)
 *               <mediaType>/<ownerId>/<timestamp>-<uuid>.<ext>           (everything else)
 *   variant     variants/<mediaId>/<sha256>.<webp|avif>                  (content-addressed)
 *   HLS run     hls/<mediaId>/<runId>/master.m3u8, …/<rendition>.m3u8, segments (.mp4/.m4s)
 *   quarantine  quarantine/<mediaId>/<original key>                    (an original the malware scan caught)
 */

/** A key segment from an identifier we do not control (a JWT `sub`, say): kept if plain, hashed if not. */
export function keySegment(value: string): string {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(value)
    ? value
    : 'h' + createHash('sha256').update(value).digest('hex').slice(0, 32);
}

/** `<device_id>/<camera_id>/<YYYY-MM-DD>/<message_id>.<ext>` — deterministic, so replays land on the same object. */
export function deviceMessageKey(
  deviceId: string,
  cameraId: string,
  capturedAt: Date,
  messageId: string,
  ext: string,
) {
  const day = capturedAt.toISOString().slice(0, 10);
  return `${deviceId}/${keySegment(cameraId)}/${day}/${keySegment(messageId)}.${ext}`;
}

/** `<mediaType>/<ownerId>/<timestamp>-<uuid>.<ext>` for uploads without a message id. */
export function ownerKey(mediaType: string, ownerId: string, now: Date, ext: string) {
  return `${mediaType}/${keySegment(ownerId)}/${now.getTime()}-${randomUUID()}.${ext}`;
}

/** The formats image variants (and video posters) are rendered in. */
export type VariantFormat = 'webp' | 'avif';

/** `variants/<mediaId>/<sha256>.<format>`: content-addressed, so rewriting the same bytes is a no-op. */
export const variantKey = (mediaId: string, sha256: string, format: VariantFormat) =>
  `variants/${mediaId}/${sha256}.${format}`;

/** The sha256 a {@link variantKey} names (null for a key of another shape). */
export const variantKeySha256 = (key: string): string | null =>
  /^variants\/[^/]+\/([0-9a-f]{64})\.[a-z0-9]+$/.exec(key)?.[1] ?? null;

export function variantContentType(format: string): string {
  return format === 'avif' ? 'image/avif' : 'image/webp';
}

/** A fresh prefix for one HLS run of a media: `hls/<mediaId>/<runId>`. */
export const hlsRunPrefix = (mediaId: string) => `hls/${mediaId}/${randomUUID()}`;

/** The key of the master playlist of the HLS run under `prefix`. */
export const hlsMasterKey = (prefix: string) => `${prefix}/master.m3u8`;

/** The key of a file of the HLS run under `prefix` (`rel`: its path relative to the run). */
export const hlsObjectKey = (prefix: string, rel: string) => `${prefix}/${rel}`;

/** The prefix every object of one HLS run lives under; playback tokens are scoped to it. */
export const hlsPrefixOf = (masterKey: string) => masterKey.slice(0, masterKey.lastIndexOf('/'));

export function hlsContentType(name: string): string {
  if (name.endsWith('.m3u8')) return 'application/vnd.apple.mpegurl';
  return 'video/mp4';
}

/**
 * Where an original the malware scan caught is kept for the operator: `quarantine/<mediaId>/<original
 * key>` (a key already there stays: a rescan after retry-processing).
 */
export function quarantineKey(mediaId: string, originalKey: string): string {
  const prefix = `quarantine/${mediaId}/`;
  return originalKey.startsWith(prefix) ? originalKey : prefix + originalKey;
}
