/**
 * What a media is for (the note's `mediaType`: post image, post video, profile image, capture),
 * one row per purpose: which media types it takes, its size limit, who may upload for it, and how
 * the worker renders its variants. Sessions (every door: POST /media, forms, tus, gRPC) check it
 * through {@link admitPurpose}; cleanup follows the purpose too (post media no post took, profile
 * images replaced: src/operations/post-media.ts, src/profiles/).
 */
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';
import type { MediaType } from './catalog.ts';

export type MediaPurpose = 'library' | 'post' | 'profile';

export interface PurposeRule {
  /** Media types it accepts. */
  mediaTypes: readonly MediaType[];
  /** Its own size limit (bytes), below the media type's; undefined: the media type's alone. */
  maxBytes?: (uploads: PurposeLimits) => number;
  /** Whether a device key may upload for it (devices upload captures only). */
  devices: boolean;
  /** Image variants: longest edge within each size (`fit`), or centre-cropped squares (`square`). */
  variants: 'fit' | 'square';
}

export type PurposeLimits = Pick<Config['uploads'], 'maxProfileImageBytes'>;

export const PURPOSES: Readonly<Record<MediaPurpose, PurposeRule>> = {
  library: { mediaTypes: ['image', 'video'], devices: true, variants: 'fit' },
  post: { mediaTypes: ['image', 'video'], devices: false, variants: 'fit' },
  profile: {
    mediaTypes: ['image'],
    maxBytes: (u) => u.maxProfileImageBytes,
    devices: false,
    variants: 'square',
  },
};

/** How the worker renders a media's image variants (rows without a known purpose: `fit`). */
export function variantStyle(purpose: string | undefined): PurposeRule['variants'] {
  return purpose !== undefined && Object.hasOwn(PURPOSES, purpose)
    ? PURPOSES[purpose as MediaPurpose].variants
    : 'fit';
}

/** Square sizes of a profile image: 150 and 300 as the note asks, and 600 for 300 at 2×. */
export const PROFILE_VARIANT_SIZES = [600, 300, 150] as const;

/**
 * The purpose's rule for a new session, after the type passed the catalog: a 4xx naming the rule
 * that was broken (`purpose_not_allowed` for a type or uploader, `file_too_large` with the
 * purpose's limit).
 */
export function admitPurpose(
  purpose: MediaPurpose,
  declared: { mediaType: MediaType; mimeType: string; bytes: number; uploader: 'device' | 'user' },
  uploads: PurposeLimits,
): void {
  const rule = PURPOSES[purpose];
  if (!rule.devices && declared.uploader === 'device') {
    throw new AppError(
      'validation_failed',
      `Only users upload for purpose "${purpose}"; a device uploads captures (purpose "library").`,
      { field: 'purpose', purpose },
    );
  }
  if (!rule.mediaTypes.includes(declared.mediaType)) {
    throw new AppError(
      'purpose_not_allowed',
      `Purpose "${purpose}" takes ${rule.mediaTypes.join(' or ')} files, not ${declared.mimeType}.`,
      {
        purpose,
        mimeType: declared.mimeType,
        mediaType: declared.mediaType,
        allowedMediaTypes: rule.mediaTypes,
      },
    );
  }
  const limit = rule.maxBytes?.(uploads);
  if (limit !== undefined && declared.bytes > limit) {
    throw new AppError('file_too_large', `Files for purpose "${purpose}" may be at most ${limit} bytes.`, {
      purpose,
      bytes: declared.bytes,
      maxBytes: limit,
    });
  }
}
