/**
 * What the single PUT (upload.ts) and the multipart part loop (multipart-upload.ts) share: the
 * context a sending round runs in, what it reports, and when a signed URL needs signing again.
 */
import type { MediaryClient } from './api.ts';
import { MediaryError } from './errors.ts';
import type { ProgressTracker } from './progress.ts';
import type { RetryOptions } from './retry.ts';
import type { ByteSource } from './source.ts';
import type { Platform, UploadOptions } from './upload.ts';

/** Re-sign a part URL this close to its expiry rather than risk a 403 mid-part. */
const URL_MARGIN_MS = 30_000;

/**
 * Whether a URL signed at `signedAt` and expiring at `expiresAt` is still good to start a request
 * with: the margin is at most half the URL's lifetime, so a server that signs short-lived URLs
 * (shorter than URL_MARGIN_MS) does not make every use a re-sign.
 */
export function stillFresh(expiresAt: string, signedAt: number, now = Date.now()): boolean {
  const expires = Date.parse(expiresAt);
  const margin = Math.min(URL_MARGIN_MS, Math.max(0, (expires - signedAt) / 2));
  return expires - now > margin;
}

/** The store or the API refused a signed URL as expired: sign again and retry. */
export const isExpiredUrl = (err: unknown) =>
  err instanceof MediaryError &&
  (err.code === 'signature_expired' || (err.status === 403 && err.code.startsWith('http_')));

/** One sending round: its signal ends at a pause or the caller's abort. */
export interface SendContext {
  client: MediaryClient;
  source: ByteSource;
  platform: Platform;
  retry: RetryOptions;
  signal: AbortSignal | undefined;
  options: UploadOptions;
  createSession: () => ReturnType<MediaryClient['createSession']>;
  tracker: ProgressTracker;
}

/** What a round sent: bodies sent and skipped, and the parts to complete with (multipart). */
export interface Sent {
  sent: number;
  skipped: number;
  parts: { partNumber: number; etag: string }[] | undefined;
}
