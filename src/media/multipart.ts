import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { partBytes, planParts, type PartPlan } from '../storage/parts.ts';
import { normalizeEtag, type ObjectStore, type PartRef, type StoredPart } from '../storage/types.ts';
import { failure } from './lifecycle.ts';
import * as mrepo from './multipart-repo.ts';
import { assertDeviceActive } from './access.ts';
import type { MultipartRow } from './multipart-repo.ts';
import type { MediaRow } from './repo.ts';
import { failUpload } from './transitions.ts';
import { NO_METRICS, type Metrics } from '../metrics/port.ts';
import { StreamingUploads } from './upload-claims.ts';
import type { UploadUrls } from './upload-urls.ts';

/** What `POST /media` answers for a file above the multipart threshold. */
export interface MultipartInstructions {
  method: 'MULTIPART';
  partSize: number;
  partCount: number;
  expiresAt: string;
}

export interface PartUrl {
  partNumber: number;
  method: 'PUT';
  url: string;
  headers: Record<string, string>;
  expiresAt: string;
}

/** A completion claim older than this is taken to be from a process that died mid-way. */
const STALE_COMPLETION_SECONDS = 600;
const MAX_PARTS_PER_CALL = 100;

const planOf = (row: MultipartRow): PartPlan => ({
  bytes: 0, // set by the caller from the media row
  partSize: row.part_size,
  partCount: row.part_count,
});

/**
 * The multipart protocol, the same on every backend: begin (with the session), sign part URLs on
 * demand, list stored parts (resume), complete (join + verify), cancel. Parts go straight to the
 * store when it can presign them; otherwise to the API's own signed part route.
 */
export class MultipartUploads {
  /** One upload at a time per part (in this process). */
  private readonly streaming = new StreamingUploads();

  constructor(
    private readonly pool: Pool,
    private readonly store: ObjectStore,
    private readonly urls: UploadUrls,
    private readonly config: Pick<Config, 'multipart'>,
    private readonly logger: Logger,
    private readonly metrics: Metrics = NO_METRICS,
  ) {}

  /** Whether a file of `bytes` bytes uses the multipart protocol. */
  applies(bytes: number): boolean {
    return bytes > this.config.multipart.thresholdBytes;
  }

  private plan(media: MediaRow, row: MultipartRow): PartPlan {
    return { ...planOf(row), bytes: media.bytes };
  }

  /** The media's upload, begun now if this is the first time it is asked for. */
  async begin(media: MediaRow): Promise<MultipartRow> {
    const existing = await mrepo.findMultipart(this.pool, media.id);
    if (existing) return existing;
    const plan = planParts(media.bytes, this.config.multipart.partSizeBytes);
    const uploadId = await this.store.createMultipart(media.storage_key, media.mime_type);
    const inserted = await mrepo.insertMultipart(this.pool, {
      mediaId: media.id,
      uploadId,
      backend: this.store.backend,
      key: media.storage_key,
      partSize: plan.partSize,
      partCount: plan.partCount,
    });
    if (!inserted) {
      // A concurrent replay of the session began one first: keep theirs, drop ours.
      await this.store.abortMultipart(media.storage_key, uploadId);
    }
    const row = await mrepo.findMultipart(this.pool, media.id);
    if (!row) throw new Error(`multipart upload for ${media.id} vanished after insert`);
    return row;
  }

  async instructions(media: MediaRow): Promise<MultipartInstructions> {
    const row = await this.begin(media);
    return {
      method: 'MULTIPART',
      partSize: row.part_size,
      partCount: row.part_count,
      expiresAt: media.upload_expires_at.toISOString(),
    };
  }

  /** The open upload of a PENDING, unexpired media; clear 4xx otherwise. */
  private async openUpload(media: MediaRow): Promise<MultipartRow> {
    const row = await mrepo.findMultipart(this.pool, media.id);
    if (!row) throw new AppError('not_multipart', undefined, { mediaId: media.id });
    if (media.status !== 'PENDING') {
      throw new AppError('invalid_state', `The media is ${media.status}; its upload is closed.`, {
        status: media.status,
      });
    }
    if (media.upload_expires_at.getTime() < Date.now()) throw new AppError('upload_expired');
    if (row.state === 'COMPLETING') throw new AppError('upload_in_progress');
    if (row.state !== 'OPEN') {
      throw new AppError('invalid_state', 'The multipart upload is no longer open.', { state: row.state });
    }
    return row;
  }

  private checkRange(row: MultipartRow, partNumbers: readonly number[]): void {
    const bad = partNumbers.filter((n) => !Number.isInteger(n) || n < 1 || n > row.part_count);
    if (bad.length > 0) {
      throw new AppError('invalid_part_number', `Part numbers must be between 1 and ${row.part_count}.`, {
        partNumbers: bad,
        partCount: row.part_count,
      });
    }
  }

  /** Short-lived URLs for the requested parts, each signed for that part's exact length. */
  async signParts(media: MediaRow, partNumbers: readonly number[]): Promise<PartUrl[]> {
    const row = await this.openUpload(media);
    if (partNumbers.length === 0 || partNumbers.length > MAX_PARTS_PER_CALL) {
      throw new AppError('validation_failed', `Ask for 1 to ${MAX_PARTS_PER_CALL} parts per call.`);
    }
    this.checkRange(row, partNumbers);
    const plan = this.plan(media, row);
    const ttl = Math.max(
      1,
      Math.min(
        this.config.multipart.partUrlTtlSeconds,
        Math.floor((media.upload_expires_at.getTime() - Date.now()) / 1000),
      ),
    );
    const expires = Math.floor(Date.now() / 1000) + ttl;
    const expiresAt = new Date(expires * 1000).toISOString();
    const unique = [...new Set(partNumbers)].sort((a, b) => a - b);
    return Promise.all(
      unique.map(async (n): Promise<PartUrl> => {
        if (this.store.capabilities.presignedParts && this.store.presignPart) {
          const signed = await this.store.presignPart(
            row.storage_key,
            row.upload_id,
            n,
            partBytes(plan, n),
            ttl,
          );
          return { partNumber: n, ...signed, expiresAt };
        }
        // The upload id travels in the URL so the signature is checked before any row is read.
        return {
          partNumber: n,
          method: 'PUT',
          url: this.urls.part(media.id, n, row.upload_id, expires),
          headers: {},
          expiresAt,
        };
      }),
    );
  }

  /** Parts already stored, for a client resuming after a restart. */
  async listStored(media: MediaRow): Promise<{ partSize: number; partCount: number; parts: StoredPart[] }> {
    const row = await this.openUpload(media);
    const parts = await this.store.listParts(row.storage_key, row.upload_id);
    if (parts) return { partSize: row.part_size, partCount: row.part_count, parts };
    const stat = await this.store.stat(row.storage_key);
    if (stat?.size === media.bytes) {
      // Joined by a completion whose answer was lost (the store went away): record it, and let
      // the client complete again, which verifies the object as usual.
      await mrepo.setState(this.pool, media.id, ['OPEN'], 'COMPLETED');
      throw new AppError('invalid_state', 'The parts were already joined: complete the upload.', {
        state: 'COMPLETED',
      });
    }
    if (stat) throw new AppError('invalid_state', 'The multipart upload is no longer open.');
    // Lost by the store (see restartLost): every part is to be sent again.
    const fresh = await this.restartLost(media, row);
    return { partSize: fresh.part_size, partCount: fresh.part_count, parts: [] };
  }

  /**
   * The store no longer knows an upload the row still holds open, and nothing was joined: it lost
   * it (e.g. an S3 gateway that crashed in the middle of CompleteMultipartUpload). Begin a fresh
   * store upload for the same key and plan so that repeating the requests finishes the media;
   * part URLs signed earlier stop working and the parts are sent again.
   */
  private async restartLost(media: MediaRow, row: MultipartRow): Promise<MultipartRow> {
    const uploadId = await this.store.createMultipart(row.storage_key, media.mime_type);
    if (!(await mrepo.replaceUploadId(this.pool, media.id, row.upload_id, uploadId))) {
      await this.store.abortMultipart(row.storage_key, uploadId).catch(() => undefined);
      throw new AppError('upload_in_progress');
    }
    this.logger.warn(
      { mediaId: media.id, lost: row.upload_id, uploadId },
      'the store lost an open multipart upload; began a fresh one (parts must be sent again)',
    );
    return { ...row, upload_id: uploadId };
  }

  /**
   * Checks a part URL's signature from the URL alone, before any row is read: an unknown media id
   * and a known one answer a bad signature the same way (403), so ids reveal nothing.
   */
  verifyPartSignature(
    mediaId: string,
    partNumber: number,
    auth: { expires: string; upload?: string | undefined; sig: string },
  ): { uploadId: string } {
    return this.urls.verifyPart(mediaId, partNumber, auth);
  }

  /**
   * The API's own part route (stores without presigned parts), after {@link verifyPartSignature}:
   * the signed upload is still this media's, state, exact length.
   */
  async receivePart(
    media: MediaRow,
    partNumber: number,
    uploadId: string,
    body: Readable,
    contentLength: number | undefined,
  ): Promise<StoredPart> {
    const row = await mrepo.findMultipart(this.pool, media.id);
    if (!row) throw new AppError('not_multipart', undefined, { mediaId: media.id });
    // Signed for an upload the store lost and the service replaced: those URLs no longer work.
    if (row.upload_id !== uploadId) throw new AppError('signature_invalid');
    await this.openUpload(media);
    await assertDeviceActive(this.pool, media);
    this.checkRange(row, [partNumber]);
    const bytes = partBytes(this.plan(media, row), partNumber);
    if (contentLength !== undefined && contentLength > bytes) {
      throw new AppError('upload_too_large', `Part ${partNumber} must be ${bytes} bytes.`, {
        partNumber,
        bytes,
        contentLength,
      });
    }
    if (contentLength !== undefined && contentLength < bytes) {
      throw new AppError('upload_incomplete', `Part ${partNumber} must be ${bytes} bytes.`, {
        partNumber,
        expectedBytes: bytes,
        contentLength,
      });
    }
    const release = this.streaming.claim(`${media.id}/${partNumber}`);
    try {
      return await this.store.putPart(row.storage_key, row.upload_id, partNumber, body, bytes);
    } finally {
      release();
    }
  }

  /**
   * Completion, store side: validates the parts list against the plan and the stored parts, then
   * joins them. Returns `multipart: false` for media that are single uploads. Any 4xx leaves the
   * upload open and unchanged, so the client can fix its list and retry.
   */
  async complete(
    media: MediaRow,
    parts: PartRef[] | undefined,
  ): Promise<{ multipart: boolean; sha256?: string }> {
    // A single upload (no multipart row when the media was read) needs no lookup.
    const row = media.has_multipart === false ? undefined : await mrepo.findMultipart(this.pool, media.id);
    if (!row) {
      if (parts !== undefined)
        throw new AppError('not_multipart', 'This media was a single upload: send no parts.');
      return { multipart: false };
    }
    if (row.state === 'COMPLETED') return { multipart: true }; // joined earlier; verification continues
    if (row.state === 'ABORTED') throw new AppError('invalid_state', 'The multipart upload was cancelled.');
    if (parts === undefined) {
      throw new AppError(
        'validation_failed',
        'Completing a multipart upload needs { parts: [{ partNumber, etag }] }.',
      );
    }
    this.checkRange(
      row,
      parts.map((p) => p.partNumber),
    );
    const seen = new Set<number>();
    const duplicates = parts
      .filter((p) => seen.size === seen.add(p.partNumber).size)
      .map((p) => p.partNumber);
    if (duplicates.length > 0) {
      throw new AppError('invalid_part_number', 'Each part may be listed once.', { duplicates });
    }
    const missing: number[] = [];
    for (let n = 1; n <= row.part_count; n++) if (!seen.has(n)) missing.push(n);
    if (missing.length > 0) {
      throw new AppError('parts_incomplete', undefined, {
        missing: missing.slice(0, 100),
        partCount: row.part_count,
      });
    }

    if (!(await mrepo.claimCompletion(this.pool, media.id, STALE_COMPLETION_SECONDS))) {
      const now = await mrepo.findMultipart(this.pool, media.id);
      if (now?.state === 'COMPLETED') return { multipart: true };
      if (now?.state === 'COMPLETING') throw new AppError('upload_in_progress');
      throw new AppError('invalid_state', 'The multipart upload is no longer open.', { state: now?.state });
    }
    try {
      const result = await this.joinParts(media, row, parts);
      await mrepo.setState(this.pool, media.id, ['COMPLETING'], 'COMPLETED');
      this.logger.info({ mediaId: media.id, parts: row.part_count }, 'multipart upload joined');
      return { multipart: true, ...(result.sha256 !== undefined ? { sha256: result.sha256 } : {}) };
    } catch (err) {
      await mrepo.setState(this.pool, media.id, ['COMPLETING'], 'OPEN');
      throw err;
    }
  }

  private async joinParts(
    media: MediaRow,
    row: MultipartRow,
    parts: PartRef[],
  ): Promise<{ sha256?: string }> {
    const stored = await this.store.listParts(row.storage_key, row.upload_id);
    if (!stored) {
      // Joined by an attempt whose process died before recording it: the object tells.
      const stat = await this.store.stat(row.storage_key);
      if (stat?.size === media.bytes) return {};
      if (stat) throw new AppError('invalid_state', 'The multipart upload is no longer open.');
      await this.restartLost(media, row);
      throw new AppError('part_not_uploaded', 'The store lost the uploaded parts: send every part again.', {
        missing: Array.from({ length: Math.min(row.part_count, 100) }, (_, i) => i + 1),
      });
    }
    const byNumber = new Map(stored.map((p) => [p.partNumber, p]));
    const notUploaded = parts.filter((p) => !byNumber.has(p.partNumber)).map((p) => p.partNumber);
    if (notUploaded.length > 0) {
      throw new AppError('part_not_uploaded', `${notUploaded.length} part(s) have not been uploaded.`, {
        missing: notUploaded.slice(0, 100),
      });
    }
    const wrongEtag = parts.filter(
      (p) => normalizeEtag(byNumber.get(p.partNumber)!.etag) !== normalizeEtag(p.etag),
    );
    if (wrongEtag.length > 0) {
      throw new AppError(
        'etag_mismatch',
        'These parts were stored with another ETag: upload them again or fix the list.',
        {
          partNumbers: wrongEtag.map((p) => p.partNumber).slice(0, 100),
        },
      );
    }
    const plan = this.plan(media, row);
    const wrongSize = stored.filter(
      (p) => p.partNumber <= plan.partCount && p.size !== partBytes(plan, p.partNumber),
    );
    if (wrongSize.length > 0) {
      throw new AppError('part_size_mismatch', undefined, {
        parts: wrongSize.map((p) => ({
          partNumber: p.partNumber,
          size: p.size,
          expected: partBytes(plan, p.partNumber),
        })),
      });
    }
    const ordered = [...parts]
      .sort((a, b) => a.partNumber - b.partNumber)
      .map((p) => ({ partNumber: p.partNumber, etag: byNumber.get(p.partNumber)!.etag }));
    const result = await this.store.completeMultipart(row.storage_key, row.upload_id, ordered);
    return result.sha256 !== undefined ? { sha256: result.sha256 } : {};
  }

  /** Aborts the store upload (multipart) or drops a partial object (single) and marks the media FAILED. */
  async cancel(media: MediaRow): Promise<void> {
    if (media.status === 'FAILED' && media.error?.code === 'cancelled') return;
    if (media.status !== 'PENDING') {
      throw new AppError(
        'invalid_state',
        `The media is ${media.status}; only a pending upload can be cancelled.`,
        {
          status: media.status,
        },
      );
    }
    const row = await mrepo.findMultipart(this.pool, media.id);
    if (row && !(await mrepo.setState(this.pool, media.id, ['OPEN', 'ABORTED'], 'ABORTED'))) {
      throw new AppError(
        'upload_in_progress',
        'The upload is being completed; it can no longer be cancelled.',
      );
    }
    const failed = await failUpload(this.pool, media.id, failure('cancelled'));
    if (!failed) throw new AppError('invalid_state', 'The upload completed before it could be cancelled.');
    this.metrics.uploadFailed(this.store.backend, 'cancelled');
    // Nothing of it is wanted now: the store's parts, or a single upload's object.
    if (row) await this.store.abortMultipart(row.storage_key, row.upload_id);
    else await this.store.delete(media.storage_key);
  }
}
