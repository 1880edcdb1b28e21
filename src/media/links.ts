/**
 * Signed URLs a client can use as they are — in `<img>`/`<video>` or with `fetch` from any page,
 * without credentials and without knowing which store is configured: the local store's signed
 * `/storage` route (CORS_ORIGINS) or a presigned URL straight to the bucket (S3_CORS_ORIGINS).
 *
 * URLs are signed for a time window rather than for "now": every request within the same window
 * gets the very same URL, so a browser cache (and a CDN keyed on the full URL) reuses the bytes
 * instead of downloading them again whenever the record is fetched again.
 */
import type { ObjectStore } from '../storage/types.ts';
import { variantContentType } from './layout.ts';
import { originalDisposition } from './catalog.ts';
import { contentDisposition } from './keys.ts';
import type { MediaRow, MediaStatus } from './repo.ts';

/** Statuses whose original can be downloaded (the bytes were verified at completion). */
export const DOWNLOADABLE: readonly MediaStatus[] = ['UPLOADED', 'PROCESSING', 'READY'];
/** With malware scanning on, only a scanned original is served: READY. */
export const DOWNLOADABLE_SCANNED: readonly MediaStatus[] = ['READY'];

export interface SignedUrl {
  url: string;
  /** When the URL stops working. */
  expiresAt: Date;
}

export interface MediaLinks {
  /** The original; null while there is nothing to download. */
  original: SignedUrl | null;
  /** By variant name. */
  variants: Record<string, SignedUrl>;
}

/**
 * The signing window for `ttlSeconds`: URLs are signed as of the start of the current quarter of
 * the TTL and live `ttlSeconds` from then, so a URL never outlives the configured TTL and whoever
 * receives one has at least three quarters of it left.
 */
export function urlWindow(ttlSeconds: number, nowMs = Date.now()): { signedAt: number; expiresAt: number } {
  const window = Math.max(1, Math.floor(ttlSeconds / 4));
  const signedAt = Math.floor(nowMs / 1000 / window) * window;
  return { signedAt, expiresAt: signedAt + ttlSeconds };
}

export const variantDisposition = (mediaId: string, name: string, format: string) =>
  contentDisposition('inline', `${mediaId}-${name}.${format}`);

export class MediaLinkSigner {
  /** Statuses whose original is served (every delivery path asks {@link originalServed}). */
  private readonly downloadable: readonly MediaStatus[];

  constructor(
    private readonly store: ObjectStore,
    private readonly ttlSeconds: number,
    /** Malware scanning is on: an original is served only once scanned (READY). */
    opts: { scanned?: boolean } = {},
  ) {
    this.downloadable = opts.scanned ? DOWNLOADABLE_SCANNED : DOWNLOADABLE;
  }

  /** Whether the original of a media in `status` may be served (signed URL, redirect or proxy). */
  originalServed(status: MediaStatus): boolean {
    return this.downloadable.includes(status);
  }

  /** One object, with the response headers it is served with. */
  async sign(key: string, contentType: string, disposition: string, nowMs = Date.now()): Promise<SignedUrl> {
    const { signedAt, expiresAt } = urlWindow(this.ttlSeconds, nowMs);
    const url = await this.store.signedGetUrl(key, {
      signedAt,
      expiresInSeconds: expiresAt - signedAt,
      contentType,
      contentDisposition: disposition,
    });
    return { url, expiresAt: new Date(expiresAt * 1000) };
  }

  original(m: MediaRow, nowMs?: number): Promise<SignedUrl> {
    return this.sign(m.storage_key, m.mime_type, originalDisposition(m.mime_type, m.file_name), nowMs);
  }

  variant(m: MediaRow, v: MediaRow['variants'][number], nowMs?: number): Promise<SignedUrl> {
    return this.sign(v.key, variantContentType(v.format), variantDisposition(m.id, v.name, v.format), nowMs);
  }

  /** Every URL a media record carries (the original's only when `original` allows it). */
  async links(m: MediaRow, allow: { original: boolean }): Promise<MediaLinks> {
    const now = Date.now();
    const [original, ...variants] = await Promise.all([
      allow.original && this.originalServed(m.status) ? this.original(m, now) : null,
      ...m.variants.map((v) => this.variant(m, v, now)),
    ]);
    return {
      original: original ?? null,
      variants: Object.fromEntries(m.variants.map((v, i) => [v.name, variants[i]!])),
    };
  }
}
