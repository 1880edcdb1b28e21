/** Bytes through the API (the local store's signed upload URL): one streaming PUT per media. */
import type { Readable } from 'node:stream';
import type { Principal } from '../auth/principals.ts';
import type { Pool } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { hashStoredObject } from '../storage/inspect.ts';
import { ObjectExistsError, type ObjectStore } from '../storage/types.ts';
import { assertDeviceActive } from './access.ts';
import { admitUploadHeaders } from './catalog.ts';
import type { MultipartUploads } from './multipart.ts';
import type { MediaQueries } from './queries.ts';
import * as repo from './repo.ts';
import type { MediaRow } from './repo.ts';
import { StreamingUploads } from './upload-claims.ts';
import type { UploadUrls } from './upload-urls.ts';

export class DirectUploads {
  /** One upload at a time per media (in this process). */
  private readonly streaming = new StreamingUploads();

  constructor(
    private readonly pool: Pool,
    private readonly store: ObjectStore,
    private readonly urls: UploadUrls,
    private readonly queries: MediaQueries,
    private readonly multipart?: MultipartUploads,
  ) {}

  /**
   * The media an upload writes to. `null`: the request came with a signed upload URL, which the
   * route verified ({@link verifyUploadSignature}) — the URL is the authorisation, so the row is
   * read unchecked; otherwise the principal must have access.
   */
  private load(principal: Principal | null, mediaId: string): Promise<MediaRow> {
    return principal === null ? this.queries.loadUnchecked(mediaId) : this.queries.get(principal, mediaId);
  }

  /** Verifies a signed upload URL for this media; throws 403 when it does not hold. */
  verifyUploadSignature(mediaId: string, expires: string, sig: string): void {
    this.urls.verifyUpload(mediaId, { expires, sig });
  }

  /**
   * Streams the request body into the store. The object appears only when the length and (if
   * declared) the sha256 check out; otherwise nothing is kept. The first upload to arrive whole
   * stays: later ones never replace it (the store's exclusive put), so the object `complete`
   * verified is the one served. Repeating the same bytes is fine (answered as a success).
   */
  async receiveUpload(
    principal: Principal | null,
    mediaId: string,
    body: Readable,
    headers: { contentType: string | undefined; contentLength: number | undefined },
    /** The session was opened with `bytesViaServer` (no multipart plan, whatever its size). */
    opts: { bytesViaServer?: boolean } = {},
  ): Promise<MediaRow> {
    const media = await this.load(principal, mediaId);
    if (media.status !== 'PENDING') return media; // a repeated PUT after completion changes nothing
    if (media.upload_expires_at.getTime() < Date.now()) throw new AppError('upload_expired');
    if (!opts.bytesViaServer && this.multipart?.applies(media.bytes))
      throw new AppError('multipart_required');
    await assertDeviceActive(this.pool, media);
    admitUploadHeaders(media, headers);
    const release = this.streaming.claim(media.id);
    let result;
    try {
      result = await this.store.put(media.storage_key, body, {
        contentType: media.mime_type,
        bytes: media.bytes,
        sha256: media.sha256 ?? undefined,
        exclusive: true,
      });
    } catch (err) {
      if (!(err instanceof ObjectExistsError)) throw err;
      return await this.repeatedUpload(principal, media.id, err.sha256);
    } finally {
      release();
    }
    const stat = await this.store.stat(media.storage_key);
    const recorded =
      stat && (await repo.recordUploadedContent(this.pool, media.id, result.sha256, stat.etag));
    if (recorded) return { ...media, content_sha256: result.sha256 };
    // No longer PENDING. Cancelled, deleted or expired while the bytes streamed (which removed the
    // object, so ours could land): nothing may keep it. (Completed meanwhile: with these bytes.)
    const now = await repo.findMedia(this.pool, media.id);
    if (now === undefined || now.status === 'FAILED' || now.status === 'DELETED') {
      await this.store.delete(media.storage_key);
      throw new AppError('invalid_state', 'The upload session ended while the bytes arrived.', {
        status: now?.status ?? 'DELETED',
      });
    }
    return { ...media, content_sha256: result.sha256 };
  }

  /**
   * An upload found an object in place: the same bytes again are a success, other bytes a 409. The
   * object's hash was recorded when it arrived, unless the process died in between: then read it.
   */
  private async repeatedUpload(
    principal: Principal | null,
    mediaId: string,
    sha256: string,
  ): Promise<MediaRow> {
    const now = await this.load(principal, mediaId);
    if (now.content_sha256 === sha256) return now;
    if (now.content_sha256 === null && (await hashStoredObject(this.store, now.storage_key)) === sha256) {
      const stat = await this.store.stat(now.storage_key);
      if (stat) await repo.recordUploadedContent(this.pool, now.id, sha256, stat.etag);
      return { ...now, content_sha256: sha256 };
    }
    throw new AppError('object_exists', undefined, {
      status: now.status,
      hint: 'Complete the upload, or cancel it and create a new session for other bytes.',
    });
  }
}
