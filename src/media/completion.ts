/** Completing an upload: verify the stored bytes, then UPLOADED + a processing job in one transaction. */
import type { Logger } from 'pino';
import type { Principal } from '../auth/principals.ts';
import { withTransaction, type Pool } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { NO_METRICS, type Metrics, type VerificationFailure } from '../metrics/port.ts';
import { hashStoredObject, sniffStoredType } from '../storage/inspect.ts';
import type { ObjectStore, PartRef } from '../storage/types.ts';
import { assertDeviceActive } from './access.ts';
import { catalogEntry } from './catalog.ts';
import { failure } from './lifecycle.ts';
import type { MultipartUploads } from './multipart.ts';
import type { MediaQueries } from './queries.ts';
import * as repo from './repo.ts';
import type { MediaRow } from './repo.ts';
import type { ProcessingQueue } from './session-types.ts';
import * as transitions from './transitions.ts';

/** The refusals of `complete` that are about the stored bytes (counted as verification failures). */
const VERIFICATION_FAILURES: ReadonlySet<string> = new Set<VerificationFailure>([
  'object_missing',
  'upload_incomplete',
  'checksum_mismatch',
  'type_mismatch',
]);

export class UploadCompletion {
  private readonly multipart: MultipartUploads | undefined;
  private readonly metrics: Metrics;
  private readonly prepared: boolean;

  constructor(
    private readonly pool: Pool,
    private readonly store: ObjectStore,
    private readonly queue: ProcessingQueue,
    private readonly queries: MediaQueries,
    private readonly logger: Logger,
    {
      multipart,
      metrics = NO_METRICS,
      prepared = false,
    }: {
      multipart?: MultipartUploads;
      metrics?: Metrics;
      /** DATABASE_PREPARED_STATEMENTS: the UPLOADED transition as a named statement. */
      prepared?: boolean;
    } = {},
  ) {
    this.multipart = multipart;
    this.metrics = metrics;
    this.prepared = prepared;
  }

  /**
   * Verifies the stored object (presence, size, sha256, type sniffed from its first bytes), then
   * sets UPLOADED and enqueues processing in one transaction. Idempotent.
   */
  async complete(principal: Principal, mediaId: string, parts?: PartRef[]): Promise<MediaRow> {
    try {
      return await this.verifyAndCommit(principal, mediaId, parts);
    } catch (err) {
      if (err instanceof AppError && VERIFICATION_FAILURES.has(err.code))
        this.metrics.verificationFailed(this.store.backend, err.code as VerificationFailure);
      throw err;
    }
  }

  private async verifyAndCommit(principal: Principal, mediaId: string, parts?: PartRef[]): Promise<MediaRow> {
    const media = await this.queries.get(principal, mediaId);
    if (media.status !== 'PENDING') return media;
    // Bytes may have reached a presigned store URL after the revocation: they are never adopted.
    await assertDeviceActive(this.pool, media);
    // Multipart: validate the parts list and join the parts first (a no-op for single uploads).
    const joined = await this.joinMultipart(media, parts);
    const stat = await this.store.stat(media.storage_key);
    if (!stat)
      throw new AppError('object_missing', 'Nothing has been uploaded for this media yet.', { mediaId });
    if (stat.size !== media.bytes) {
      throw new AppError(
        'upload_incomplete',
        `The stored object has ${stat.size} bytes, ${media.bytes} were declared.`,
        {
          expectedBytes: media.bytes,
          storedBytes: stat.size,
        },
      );
    }
    // Reuse the hash computed while receiving when it belongs to this exact object; else hash now.
    let sha256 = media.content_etag === stat.etag ? media.content_sha256 : (joined.sha256 ?? null);
    // Bytes that came through this API are on local disk: hashing them again is cheap.
    if (sha256 === null && !this.store.capabilities.presignedPut) {
      sha256 = (await hashStoredObject(this.store, media.storage_key)) ?? null;
      if (sha256 === null) throw new AppError('object_missing');
    }
    // A presigned single PUT carried the declared sha256, signed, to a store that verifies it.
    if (sha256 === null && !joined.multipart && this.store.capabilities.enforcesChecksum)
      sha256 = media.sha256;
    // Otherwise content_sha256 stays null: verification pending, done by whoever reads the bytes
    // next (the processing worker) rather than by reading a multi-GB object back here.
    if (media.sha256 !== null && sha256 !== null && sha256 !== media.sha256) {
      await this.store.delete(media.storage_key);
      // A joined multipart upload cannot be re-sent part by part: this session is over.
      if (
        joined.multipart &&
        (await transitions.failUpload(this.pool, media.id, failure('checksum_mismatch')))
      )
        this.metrics.uploadFailed(this.store.backend, 'checksum_mismatch');
      throw new AppError(
        'checksum_mismatch',
        `Expected sha256 ${media.sha256}, stored object has ${sha256}.`,
        {
          expectedSha256: media.sha256,
          actualSha256: sha256,
        },
      );
    }
    const detected = await sniffStoredType(this.store, media.storage_key);
    const entry = catalogEntry(media.mime_type);
    if (!entry || detected === undefined || !entry.detects.includes(detected)) {
      const message = `The content is ${detected ?? 'not a recognised media type'}, not ${media.mime_type}.`;
      await this.store.delete(media.storage_key);
      if (await transitions.failUpload(this.pool, media.id, failure('type_mismatch', message)))
        this.metrics.uploadFailed(this.store.backend, 'type_mismatch');
      throw new AppError('type_mismatch', message, { declared: media.mime_type, detected: detected ?? null });
    }
    await this.markOriginal(media);
    // The answer is the state this request committed; a worker may move it on a moment later.
    const completed = await withTransaction(this.pool, async (tx) => {
      const uploaded = await transitions.markUploaded(
        tx,
        media.id,
        {
          sha256,
          etag: stat.etag,
          detectedMime: detected,
          backend: this.store.backend,
          uri: this.store.uri(media.storage_key),
        },
        { prepared: this.prepared },
      );
      if (!uploaded) return { row: await repo.findMedia(tx, media.id), uploaded: false };
      await this.queue.enqueueProcessing(tx, media.id, media.media_type);
      // The joined fields (device owner, variants: none yet) are those read above; the row's own
      // columns are what the UPDATE returned — no statement to read it back.
      return { row: { ...media, ...uploaded }, uploaded: true };
    });
    if (completed.uploaded) this.metrics.uploadCompleted(this.store.backend, media.bytes);
    this.logger.info({ mediaId, bytes: media.bytes }, 'upload completed');
    // Checked above; only its state changed since.
    return completed.row ?? this.queries.loadUnchecked(mediaId);
  }

  /**
   * Tags the verified original for the archive lifecycle rule (S3 with S3_ARCHIVE_AFTER_DAYS).
   * Best effort: an original left untagged is only never archived, which must not fail its upload.
   */
  private async markOriginal(media: MediaRow): Promise<void> {
    try {
      await this.store.archive?.markOriginal(media.storage_key);
    } catch (err) {
      this.logger.warn(
        { mediaId: media.id, err },
        'original not tagged for archiving: it stays in its class',
      );
    }
  }

  private async joinMultipart(media: MediaRow, parts: PartRef[] | undefined) {
    if (this.multipart) return this.multipart.complete(media, parts);
    if (parts !== undefined)
      throw new AppError('not_multipart', 'This media was a single upload: send no parts.');
    return { multipart: false, sha256: undefined };
  }
}
