/**
 * The port through which upload use cases get the API's own signed upload and part URLs (stores
 * without presigned PUTs) and check the ones that come back. The HTTP layer implements it
 * (src/http/urls.ts: it owns the paths and the public address; the one signer signs), so the
 * domain builds no URL.
 */
export interface UploadUrls {
  /** A signed URL for `PUT`ting the bytes of `mediaId`, valid until `expiresAt` (Unix seconds). */
  upload(mediaId: string, expiresAt: number): string;
  /** Throws 403 (`signature_invalid` / `signature_expired`) unless the parameters sign this upload. */
  verifyUpload(mediaId: string, params: { expires?: string; sig?: string }): void;
  /** A signed URL for `PUT`ting part `partNumber` of the store upload `uploadId`. */
  part(mediaId: string, partNumber: number, uploadId: string, expiresAt: number): string;
  /** The store upload a part URL was signed for; throws 403 unless the parameters sign this part. */
  verifyPart(
    mediaId: string,
    partNumber: number,
    params: { expires?: string; upload?: string; sig?: string },
  ): { uploadId: string };
}
