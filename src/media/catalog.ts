import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import { contentDisposition, downloadName } from './keys.ts';

/** The allow-list: declared MIME type → media type, key extension, and what sniffing may find. */
export type MediaType = 'image' | 'video';

interface Entry {
  mediaType: MediaType;
  ext: string;
  /** MIME types `file-type` may report for honest files of this declared type. */
  detects: readonly string[];
  /** Safe to render inline in a browser (no active content). */
  inline: boolean;
}

const HEIF = ['image/heic', 'image/heif', 'image/heic-sequence', 'image/heif-sequence'];
const ISO_VIDEO = ['video/mp4', 'video/quicktime', 'video/x-m4v', 'video/3gpp'];

export const MIME_CATALOG: Readonly<Record<string, Entry>> = {
  'image/jpeg': { mediaType: 'image', ext: 'jpg', detects: ['image/jpeg'], inline: true },
  'image/png': { mediaType: 'image', ext: 'png', detects: ['image/png'], inline: true },
  'image/webp': { mediaType: 'image', ext: 'webp', detects: ['image/webp'], inline: true },
  'image/gif': { mediaType: 'image', ext: 'gif', detects: ['image/gif'], inline: true },
  'image/avif': { mediaType: 'image', ext: 'avif', detects: ['image/avif'], inline: true },
  'image/heic': { mediaType: 'image', ext: 'heic', detects: HEIF, inline: false },
  'image/heif': { mediaType: 'image', ext: 'heif', detects: HEIF, inline: false },
  'video/mp4': { mediaType: 'video', ext: 'mp4', detects: ISO_VIDEO, inline: true },
  'video/quicktime': { mediaType: 'video', ext: 'mov', detects: ISO_VIDEO, inline: true },
  'video/webm': {
    mediaType: 'video',
    ext: 'webm',
    detects: ['video/webm', 'video/x-matroska'],
    inline: true,
  },
  'video/x-matroska': {
    mediaType: 'video',
    ext: 'mkv',
    detects: ['video/x-matroska', 'video/webm'],
    inline: false,
  },
};

export function catalogEntry(mime: string): Entry | undefined {
  return Object.hasOwn(MIME_CATALOG, mime) ? MIME_CATALOG[mime] : undefined;
}

/** Lower-cases and strips parameters: `Image/JPEG; charset=x` → `image/jpeg`. */
export function baseMime(value: string): string {
  return value.split(';')[0]!.trim().toLowerCase();
}

/**
 * What a client declares for a new upload, checked against the catalog and the configured limits:
 * the base MIME type must be known and allowed, `mediaType` (if sent) must agree with it, and the
 * size must be within the per-type limit. Returns the base type and its catalog entry.
 */
export function admitDeclaredFile(
  declared: { mimeType: string; mediaType?: MediaType | undefined; bytes: number },
  uploads: Pick<Config['uploads'], 'allowedMimeTypes' | 'maxImageBytes' | 'maxVideoBytes'>,
): { mimeType: string; entry: Entry } {
  const mimeType = baseMime(declared.mimeType);
  const entry = catalogEntry(mimeType);
  const allowed = uploads.allowedMimeTypes;
  if (!entry || (allowed && !allowed.includes(mimeType))) {
    throw new AppError('mime_type_not_allowed', `The type "${mimeType}" is not allowed.`, {
      mimeType,
      allowed: allowed ?? Object.keys(MIME_CATALOG),
    });
  }
  if (declared.mediaType !== undefined && declared.mediaType !== entry.mediaType) {
    throw new AppError(
      'media_type_mismatch',
      `mediaType "${declared.mediaType}" does not match "${mimeType}".`,
      {
        mediaType: declared.mediaType,
        mimeType,
      },
    );
  }
  const limit = entry.mediaType === 'image' ? uploads.maxImageBytes : uploads.maxVideoBytes;
  if (declared.bytes > limit) {
    throw new AppError('file_too_large', `${entry.mediaType} files may be at most ${limit} bytes.`, {
      bytes: declared.bytes,
      maxBytes: limit,
    });
  }
  return { mimeType, entry };
}

/**
 * The headers of a PUT must agree with the session before any byte is read: the declared type,
 * and a `Content-Length` (when sent) equal to the declared size.
 */
export function admitUploadHeaders(
  media: { mime_type: string; bytes: number },
  headers: { contentType: string | undefined; contentLength: number | undefined },
): void {
  if (headers.contentType !== undefined && baseMime(headers.contentType) !== media.mime_type) {
    throw new AppError('content_type_mismatch', `Content-Type must be ${media.mime_type}.`, {
      expected: media.mime_type,
      received: baseMime(headers.contentType),
    });
  }
  if (headers.contentLength !== undefined && headers.contentLength > media.bytes) {
    throw new AppError(
      'upload_too_large',
      `Content-Length ${headers.contentLength} exceeds the declared ${media.bytes}.`,
      {
        declaredBytes: media.bytes,
        contentLength: headers.contentLength,
      },
    );
  }
  if (headers.contentLength !== undefined && headers.contentLength < media.bytes) {
    throw new AppError(
      'upload_incomplete',
      `Content-Length ${headers.contentLength} is less than the declared ${media.bytes}.`,
      {
        expectedBytes: media.bytes,
        contentLength: headers.contentLength,
      },
    );
  }
}

/**
 * Content-Disposition of an original: inline only for types safe to show, and always saved with
 * the extension of the verified type (see downloadName).
 */
export function originalDisposition(mimeType: string, fileName: string): string {
  const entry = catalogEntry(mimeType);
  return contentDisposition(
    entry?.inline === true ? 'inline' : 'attachment',
    entry ? downloadName(fileName, entry.ext) : fileName,
  );
}
