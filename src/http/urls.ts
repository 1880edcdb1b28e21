/**
 * The public paths of the API, declared once. The routes register with these templates, and every
 * absolute URL the API hands out (signed upload and part URLs, the local store's signed GETs, HLS
 * playlist URIs, tus upload URLs) is built here from them and `PUBLIC_URL`. The domain asks for
 * URLs through ports it declares (`UploadUrls`, `PlaybackUrls`, `StorageUrls`), which
 * {@link PublicUrls} implements; the composition root (src/app.ts) injects it. So no folder below
 * the HTTP layer knows a path of this API or the public address (eslint checks both).
 *
 * Signing and verifying stay in the one signer (src/storage/signing.ts); this module only puts its
 * query parameters into URLs and hands a URL's parameters back to it.
 */
import type { UploadUrls } from '../media/upload-urls.ts';
import type { PlaybackGrant, PlaybackUrls } from '../processing/playback.ts';
import type { StorageUrls } from '../storage/local.ts';
import type { SignedParams, UrlSigner } from '../storage/signing.ts';
import type { SignedGetOptions } from '../storage/types.ts';

/** Every route of the public API is under this prefix. */
export const API_PREFIX = '/api/v1';

/** Route templates (Fastify syntax, relative to {@link API_PREFIX}) of the resources URLs name. */
export const ROUTES = {
  upload: '/media/:id/upload',
  part: '/media/:id/parts/:partNumber',
  storage: '/storage/*',
  hlsMaster: '/media/:id/hls/master.m3u8',
  hlsObject: '/media/:id/hls/*',
  variant: '/media/:id/variants/:name',
  restore: '/media/:id/restore',
  tusUpload: '/tus/:id',
} as const;

/**
 * The API path of `template` with its `:name` parameters and its `*` filled in verbatim (callers
 * encode what needs encoding).
 */
export function apiPath(template: string, params: Record<string, string | number>): string {
  const filled = template.replace(/:([A-Za-z]+)|\*/g, (whole, name: string | undefined) => {
    const value = params[name ?? '*'];
    if (value === undefined) throw new Error(`no value for ${whole} of ${template}`);
    return String(value);
  });
  return `${API_PREFIX}${filled}`;
}

/** The API paths other answers name (relative to the host, as the wire contract has them). */
export const paths = {
  hlsMaster: (mediaId: string) => apiPath(ROUTES.hlsMaster, { id: mediaId }),
  variant: (mediaId: string, name: string) => apiPath(ROUTES.variant, { id: mediaId, name }),
  restore: (mediaId: string) => apiPath(ROUTES.restore, { id: mediaId }),
};

const query = (params: object) => new URLSearchParams(params as Record<string, string>).toString();

/**
 * Absolute URLs on `PUBLIC_URL`, signed by the one signer where they carry their own
 * authorisation, and the checks of those signatures for the routes and use cases that receive them.
 */
export class PublicUrls implements UploadUrls, PlaybackUrls, StorageUrls {
  constructor(
    private readonly signer: UrlSigner,
    /** `PUBLIC_URL` (config.publicUrl: no trailing slash). */
    private readonly base: string,
  ) {}

  private absolute(template: string, params: Record<string, string | number>): string {
    return `${this.base}${apiPath(template, params)}`;
  }

  // ---- uploads (stores without presigned PUTs) ----

  /** `PUT /media/{id}/upload?expires&sig`. */
  upload(mediaId: string, expiresAt: number): string {
    const signed = this.signer.sign('upload', { mediaId }, expiresAt);
    return `${this.absolute(ROUTES.upload, { id: mediaId })}?${query(signed)}`;
  }

  verifyUpload(mediaId: string, params: Partial<SignedParams['upload']>): void {
    this.signer.verify('upload', { mediaId }, params);
  }

  /** `PUT /media/{id}/parts/{n}?expires&upload&sig`: the upload id travels in the URL. */
  part(mediaId: string, partNumber: number, uploadId: string, expiresAt: number): string {
    const signed = this.signer.sign('part', { mediaId, partNumber, uploadId }, expiresAt);
    return `${this.absolute(ROUTES.part, { id: mediaId, partNumber })}?${query(signed)}`;
  }

  verifyPart(
    mediaId: string,
    partNumber: number,
    params: Partial<SignedParams['part']>,
  ): { uploadId: string } {
    return this.signer.verify('part', { mediaId, partNumber }, params).claims;
  }

  // ---- the local store's objects ----

  /**
   * `GET /storage/{key}?expires&ct&cd&sig`. The key is one path segment (`/` as %2F), so the URL
   * fits the OpenAPI template /storage/{key}; the route decodes it to the same key (and still
   * takes the key's slashes unencoded).
   */
  signedGet(key: string, opts: SignedGetOptions): string {
    const expires = (opts.signedAt ?? Math.floor(Date.now() / 1000)) + opts.expiresInSeconds;
    const signed = this.signer.sign(
      'storage',
      { key, contentType: opts.contentType, contentDisposition: opts.contentDisposition },
      expires,
    );
    return `${this.absolute(ROUTES.storage, { '*': encodeURIComponent(key) })}?${query(signed)}`;
  }

  verifyStorage(key: string, params: Partial<SignedParams['storage']>): void {
    this.signer.verify('storage', { key }, params);
  }

  // ---- HLS playback ----

  token(mediaId: string, runId: string, expiresAt: number): string {
    return this.signer.sign('hls', { mediaId, runId }, expiresAt).token;
  }

  verifyToken(mediaId: string, token: string): PlaybackGrant {
    const { claims, expiresAt } = this.signer.verify('hls', { mediaId }, { token }, Date.now(), {
      expired: 'The playback token has expired.',
      invalid: 'The playback token is invalid.',
    });
    return { runId: claims.runId, expiresAt };
  }

  /** `GET /media/{id}/hls/<rel>?token=`: `rel` is a path inside the run (`720p/seg_1.m4s`). */
  hlsObject(mediaId: string, rel: string, token: string): string {
    return `${this.absolute(ROUTES.hlsObject, { id: mediaId, '*': rel })}?token=${encodeURIComponent(token)}`;
  }

  // ---- tus ----

  /** The `Location` of a tus upload. */
  tusUpload(mediaId: string): string {
    return this.absolute(ROUTES.tusUpload, { id: mediaId });
  }
}
