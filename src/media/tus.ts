import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principals.ts';
import type { Config } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import { AppError, toError } from '../errors.ts';
import { hashStoredObject } from '../storage/inspect.ts';
import { planParts } from '../storage/parts.ts';
import { sha256Batches, type Sha256Batches } from '../storage/sha256-offload.ts';
import { StagingFiles } from '../storage/staging.ts';
import { ObjectExistsError, type ObjectStore } from '../storage/types.ts';
import type { MultipartUploads } from './multipart.ts';
import { findMultipart } from './multipart-repo.ts';
import { failure } from './lifecycle.ts';
import * as repo from './repo.ts';
import { failUpload } from './transitions.ts';
import type { MediaRow } from './repo.ts';
import { assertDeviceActive, type CreateSessionInput, type MediaService } from './service.ts';
import * as trepo from './tus-repo.ts';
import type { TusRow } from './tus-repo.ts';
import { recoverStaging, storeFullParts, storePart, type TusPartContext } from './tus-parts.ts';
import { StreamingUploads } from './upload-claims.ts';

export const TUS_VERSION = '1.0.0';
export const TUS_EXTENSIONS = ['creation', 'creation-with-upload', 'termination', 'expiration', 'checksum'];
/** Upload-Checksum algorithms (the `checksum` extension); Node's hashes by these names. */
export const TUS_CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'md5'] as const;
export type TusChecksumAlgorithm = (typeof TUS_CHECKSUM_ALGORITHMS)[number];

/** What HEAD, PATCH and POST answer about an upload. */
export interface TusState {
  media: MediaRow;
  offset: number;
  length: number;
  expiresAt: Date;
  metadata: string | null;
}

export interface TusChecksum {
  algorithm: string;
  /** The digest the client sent (decoded from base64). */
  digest: Buffer;
}

/** Hashes kept for uploads resumed in this process (the rest are rebuilt or re-read). */
const MAX_KEPT_HASHES = 10_000;
/** Bytes of one PATCH that may wait for the hashing thread before the body is paused. */
const HASH_BACKLOG = 8 * 1024 * 1024;

/**
 * tus 1.0 (core, creation, creation-with-upload, termination, expiration, checksum) as a door into
 * the ordinary upload sessions: creation is {@link MediaService.createSession} (limits, quotas,
 * idempotency, auth), the final PATCH ends in {@link MediaService.complete} (type sniffing,
 * verification, processing). Between them, PATCH bodies are appended to staging files with offset
 * checks; an offset is committed in Postgres only after the bytes before it are fsynced (or stored
 * as parts), so HEAD tells the truth across restarts.
 *
 * - Stores whose objects are local files: one staging file under the store's `.tus/`, published by
 *   a hard link when whole (no copy).
 * - Other stores (S3, GCS): the store's multipart parts; at most one part per upload waits on
 *   local disk (`TUS_STAGING_DIR`) until it is full. Uploads of one part are a single put.
 *
 * The SHA-256 of the whole upload is computed as the bytes pass, in a worker thread unless
 * `TUS_HASH_THREAD` is false (storage/sha256-offload.ts: each written batch of the body is handed
 * over, not copied), and kept
 * between PATCHes; after a restart it is rebuilt from the staging file (local) or, once parts were
 * stored, the object is read back when whole.
 */
export class TusUploads {
  private readonly streaming = new StreamingUploads();
  /** Whole-upload SHA-256 at a committed offset, per media (in this process). */
  private readonly hashes = new Map<string, { offset: number; hash: Sha256Batches }>();
  private readonly stagingDir: string;
  private readonly adopts: boolean;
  private readonly parts: TusPartContext;

  constructor(
    private readonly pool: Pool,
    private readonly store: ObjectStore,
    private readonly media: MediaService,
    private readonly multipart: MultipartUploads,
    private readonly config: Pick<Config, 'tus' | 'multipart'>,
    private readonly logger: Logger,
  ) {
    this.adopts = store.stagingDir !== undefined && store.adoptFile !== undefined;
    this.stagingDir = store.stagingDir ?? config.tus.stagingDir;
    this.parts = { pool, store, logger, forgetHash: (id) => this.hashes.delete(id) };
  }

  private staging(row: Pick<TusRow, 'media_id' | 'part_size'>): StagingFiles {
    return new StagingFiles(this.stagingDir, row.media_id, row.part_size);
  }

  // ---- creation ---------------------------------------------------------------------------

  /** A new session (or the replay of one) that takes its bytes by tus. */
  async create(
    principal: Principal,
    input: CreateSessionInput,
    idempotencyKey: string | undefined,
    metadata: string | null,
  ): Promise<TusState> {
    const session = await this.media.createSession(principal, input, idempotencyKey, {
      bytesViaServer: true,
    });
    const m = session.media;
    if (m.status === 'PENDING') {
      if (await findMultipart(this.pool, m.id)) {
        throw new AppError(
          'invalid_state',
          'This session was made for the multipart protocol; continue it there.',
          {
            mediaId: m.id,
          },
        );
      }
      const partSize = this.adopts ? 0 : planParts(m.bytes, this.config.multipart.partSizeBytes).partSize;
      await trepo.insertTus(this.pool, { mediaId: m.id, metadata, partSize });
    }
    return this.describe(m);
  }

  // ---- HEAD -------------------------------------------------------------------------------

  async state(principal: Principal, mediaId: string): Promise<TusState> {
    const m = await this.media.get(principal, mediaId);
    const state = await this.describe(m);
    if (m.status === 'PENDING' && state.offset === m.bytes) {
      // Every byte arrived but the completion did not (a crash, a failed store call): finish now,
      // so a client that resumes with HEAD and sees a whole upload leaves a completed media.
      const release = this.claim(mediaId);
      try {
        const row = await trepo.findTus(this.pool, mediaId);
        if (row && row.upload_offset === m.bytes) return await this.finish(principal, m, row);
      } finally {
        release();
      }
    }
    return state;
  }

  /** The upload's offset as a tus client sees it; 410 for closed or expired sessions. */
  private async describe(m: MediaRow): Promise<TusState> {
    const base = { media: m, length: m.bytes, expiresAt: m.upload_expires_at };
    if (m.status === 'FAILED') {
      throw new AppError('upload_closed', undefined, { status: m.status, error: m.error });
    }
    if (m.status !== 'PENDING') {
      const row = await trepo.findTus(this.pool, m.id);
      return { ...base, offset: m.bytes, metadata: row?.metadata ?? null };
    }
    if (m.upload_expires_at.getTime() < Date.now()) {
      const row = await trepo.findTus(this.pool, m.id);
      if (row) await this.cleanup(row);
      throw new AppError('upload_expired', undefined, { expiredAt: m.upload_expires_at.toISOString() });
    }
    const row = await trepo.findTus(this.pool, m.id);
    if (!row)
      throw new AppError('not_found', 'No tus upload has this id (the session takes its bytes otherwise).');
    return { ...base, offset: row.upload_offset, metadata: row.metadata };
  }

  // ---- PATCH ------------------------------------------------------------------------------

  /**
   * Appends `body` at `offset`. Without Upload-Checksum, what arrives is committed every
   * `TUS_CHECKSUM_BYTES` and when the body ends, also when it ends early (the client went away);
   * with it, the PATCH is committed whole after the digest matched, or not at all (460).
   */
  async append(
    principal: Principal,
    mediaId: string,
    offset: number,
    body: Readable,
    opts: { contentLength?: number | undefined; checksum?: TusChecksum | undefined },
  ): Promise<TusState> {
    const m = await this.media.get(principal, mediaId);
    if (opts.checksum && !(TUS_CHECKSUM_ALGORITHMS as readonly string[]).includes(opts.checksum.algorithm)) {
      throw new AppError('checksum_algorithm_unsupported', undefined, {
        algorithm: opts.checksum.algorithm,
        supported: TUS_CHECKSUM_ALGORITHMS,
      });
    }
    const before = await this.describe(m);
    if (m.status !== 'PENDING') {
      // Already complete: a repeated final PATCH with nothing more to add is answered as is.
      if (offset !== before.offset) throw offsetMismatch(before.offset);
      if ((opts.contentLength ?? 0) > 0) throw tooLarge(m.bytes, offset, opts.contentLength ?? 0);
      return before;
    }
    await assertDeviceActive(this.pool, m);
    const release = this.claim(mediaId);
    try {
      let row = await trepo.findTus(this.pool, mediaId);
      if (!row) throw new AppError('not_found', 'No tus upload has this id.');
      if (offset !== row.upload_offset) throw offsetMismatch(row.upload_offset);
      if (opts.contentLength !== undefined && offset + opts.contentLength > m.bytes) {
        throw tooLarge(m.bytes, offset, opts.contentLength);
      }
      row = await recoverStaging(this.parts, m, row, this.staging(row));
      // recover() may have moved the offset back (staging lost): the client must ask again.
      if (offset !== row.upload_offset) throw offsetMismatch(row.upload_offset);
      row = await this.receive(m, row, body, opts.checksum);
      if (row.upload_offset === m.bytes) return await this.finish(principal, m, row);
      return { ...before, offset: row.upload_offset };
    } finally {
      release();
    }
  }

  /** One PATCH at a time per upload in this process (another: 423); across processes the offset check. */
  private claim(mediaId: string): () => void {
    try {
      return this.streaming.claim(`tus:${mediaId}`);
    } catch {
      throw new AppError('upload_locked');
    }
  }

  /** The whole-upload hash at `row`'s offset, if it can be had without reading the store. */
  private async hashAt(row: TusRow, files: StagingFiles): Promise<Sha256Batches | undefined> {
    const kept = this.hashes.get(row.media_id);
    if (kept?.offset === row.upload_offset) return kept.hash.copy();
    if (row.upload_offset === 0) return sha256Batches(this.config.tus.hashThread);
    // The local store keeps the whole upload in its one staging file: hash it again.
    if (row.part_size === 0) return files.hashPrefix(1, row.upload_offset);
    return undefined;
  }

  /** Keeps `hash` (not used elsewhere afterwards) as the upload's state at `offset`. */
  private keepHash(mediaId: string, offset: number, hash: Sha256Batches | undefined): void {
    this.hashes.delete(mediaId);
    if (!hash) return;
    if (this.hashes.size >= MAX_KEPT_HASHES) {
      const oldest = this.hashes.keys().next().value;
      if (oldest !== undefined) this.hashes.delete(oldest);
    }
    this.hashes.set(mediaId, { offset, hash });
  }

  private async receive(m: MediaRow, row: TusRow, body: Readable, checksum?: TusChecksum): Promise<TusRow> {
    const files = this.staging(row);
    let hash = await this.hashAt(row, files);
    const digest = checksum ? createHash(checksum.algorithm) : undefined;
    let committed = row.upload_offset;
    let pos = committed;
    // Written batches are hashed in the worker thread (handed over: nothing reads them again);
    // a checkpoint asks for the hash state at its offset, which a batch's end reaches exactly.
    let hashedTo = committed;
    const wanted = new Map<number, (state: Sha256Batches | undefined) => void>();
    files.onWritten = (bufs, end) => {
      hash?.update(bufs, { handOver: true });
      hashedTo = end;
      wanted.get(end)?.(hash?.copy());
      wanted.delete(end);
    };
    const stateAt = (target: number) =>
      target === hashedTo
        ? Promise.resolve(hash?.copy())
        : new Promise<Sha256Batches | undefined>((resolve) => wanted.set(target, resolve));
    /** Makes the bytes before `pos` durable, then records that offset (with the hash there). */
    const commit = async () => {
      // Taken before the first await: the bytes up to here are what the sync covers.
      const target = pos;
      const at = target === committed ? undefined : stateAt(target);
      await files.sync();
      if (target === committed) return;
      if (!(await trepo.advanceOffset(this.pool, m.id, committed, target))) {
        // Cancelled meanwhile, or another API instance wrote to this upload.
        this.hashes.delete(m.id);
        throw new AppError('upload_locked', 'The upload changed while this request wrote to it; ask HEAD.');
      }
      committed = target;
      this.keepHash(m.id, committed, await at);
      row = await storeFullParts(this.parts, m, { ...row, upload_offset: committed }, files);
    };
    // A checkpoint of the one staging file (local store) runs while the body keeps streaming in
    // (one at a time; a failed one ends the PATCH at the next chunk). Parts of other stores are
    // checkpointed in line, so at most one part waits on local disk.
    const background = row.part_size === 0;
    let checkpoint: Promise<void> | undefined;
    let checkpointError: Error | undefined;
    const settleCheckpoint = async () => {
      const running = checkpoint;
      checkpoint = undefined;
      await running;
      if (checkpointError !== undefined) throw checkpointError;
    };
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (checkpointError !== undefined) throw checkpointError;
        if (pos + chunk.length > m.bytes)
          throw tooLarge(m.bytes, row.upload_offset, pos + chunk.length - row.upload_offset);
        // The checksum of this PATCH (rare) is taken here, before the chunk is written and handed over.
        digest?.update(chunk);
        pos += chunk.length;
        await files.write(pos - chunk.length, chunk);
        if (hash && hash.backlog > HASH_BACKLOG) await hash.drained(HASH_BACKLOG);
        if (digest || pos - committed < this.config.tus.checkpointBytes) continue;
        if (!background) await commit();
        else if (!checkpoint) {
          checkpoint = commit().catch((err: unknown) => {
            checkpointError ??= toError(err);
          });
        }
      }
      await settleCheckpoint();
      if (digest && checksum && !digest.digest().equals(checksum.digest)) {
        throw new AppError('tus_checksum_mismatch', undefined, { algorithm: checksum.algorithm });
      }
      await commit();
    } catch (err) {
      await settleCheckpoint().catch(() => undefined);
      // A body that ended early (the client went away, a timeout, too many bytes) keeps what came
      // whole, unless it carried a checksum, which only the whole body can satisfy.
      if (!digest && pos > committed) {
        await commit().catch((e: unknown) =>
          this.logger.warn({ err: e, mediaId: m.id }, 'tus: could not keep a partial PATCH'),
        );
      }
      if (digest) hash = undefined;
      throw err;
    } finally {
      await files.close();
    }
    return { ...row, upload_offset: committed };
  }

  // ---- the last byte ----------------------------------------------------------------------

  /**
   * Every byte is in: publish the object (link, single put or joined parts), check the declared
   * sha256 against the one computed, record it, and complete the session as any other upload.
   * Safe to repeat after a crash at any step.
   */
  private async finish(principal: Principal, m: MediaRow, row: TusRow): Promise<TusState> {
    const files = this.staging(row);
    let sha256 = await hexOf(await this.hashAt(row, files));
    if (!(await this.store.stat(m.storage_key))) {
      if (this.adopts && row.part_size === 0) {
        sha256 ??= await hexOf(await files.hashPrefix(1, m.bytes));
        if (sha256 === undefined) throw new Error(`tus upload ${m.id}: the staged file could not be hashed`);
        try {
          await this.store.adoptFile!(m.storage_key, files.file(1), sha256);
        } catch (err) {
          if (!(err instanceof ObjectExistsError)) throw err;
        }
      } else if (m.bytes <= row.part_size) {
        const put = await this.store.put(m.storage_key, files.read(1), {
          contentType: m.mime_type,
          bytes: m.bytes,
          sha256,
          exclusive: true,
        });
        sha256 = put.sha256;
        await files.remove(1);
      } else {
        const count = Math.ceil(m.bytes / row.part_size);
        for (let n = row.parts.length + 1; n <= count; n++) {
          row = await storePart(
            this.parts,
            m,
            row,
            files,
            n,
            Math.min(row.part_size, m.bytes - (n - 1) * row.part_size),
          );
        }
        const joined = await this.store.completeMultipart(
          m.storage_key,
          row.store_upload_id!,
          row.parts.map((p) => ({ partNumber: p.partNumber, etag: p.etag })),
        );
        sha256 = joined.sha256 ?? sha256;
      }
    }
    sha256 ??= await hashStoredObject(this.store, m.storage_key);
    const stat = await this.store.stat(m.storage_key);
    if (sha256 === undefined || !stat) throw new Error(`tus upload ${m.id}: the published object is missing`);
    if (m.sha256 !== null && sha256 !== m.sha256) {
      await this.store.delete(m.storage_key);
      if (await failUpload(this.pool, m.id, failure('checksum_mismatch')))
        this.media.metrics.uploadFailed(this.store.backend, 'checksum_mismatch');
      await this.cleanup(row);
      throw new AppError('checksum_mismatch', `Expected sha256 ${m.sha256}, the upload has ${sha256}.`, {
        expectedSha256: m.sha256,
        actualSha256: sha256,
      });
    }
    await repo.recordUploadedContent(this.pool, m.id, sha256, stat.etag);
    let done: MediaRow;
    try {
      done = await this.media.complete(principal, m.id);
    } catch (err) {
      const now = await repo.findMedia(this.pool, m.id);
      if (now?.status !== 'PENDING') await this.cleanup(row);
      throw err;
    }
    await this.cleanup(row);
    return {
      media: done,
      offset: m.bytes,
      length: m.bytes,
      expiresAt: m.upload_expires_at,
      metadata: row.metadata,
    };
  }

  // ---- termination and leftovers ----------------------------------------------------------

  /** DELETE: the session is cancelled (FAILED, `cancelled`) and everything staged is dropped. */
  async terminate(principal: Principal, mediaId: string): Promise<void> {
    const m = await this.media.get(principal, mediaId);
    const row = await trepo.findTus(this.pool, mediaId);
    if (!row && m.status === 'PENDING') throw new AppError('not_found', 'No tus upload has this id.');
    // A session that is over already (expired, failed) has only its leftovers to lose.
    if (m.status !== 'FAILED') await this.multipart.cancel(m);
    if (row) await this.cleanup(row);
  }

  /** Drops an upload's staging files, the store's multipart upload and its row. */
  private async cleanup(row: TusRow): Promise<void> {
    this.hashes.delete(row.media_id);
    await this.staging(row).removeAll();
    if (row.store_upload_id !== null) {
      const m = await repo.findMedia(this.pool, row.media_id);
      if (m) await this.store.abortMultipart(m.storage_key, row.store_upload_id);
    }
    await trepo.deleteTus(this.pool, row.media_id);
  }

  /** Removes the leftovers of finished, cancelled and expired tus uploads (the sweeper's round). */
  async sweep(): Promise<number> {
    let removed = 0;
    for (;;) {
      const rows = await trepo.finishedOrExpired(this.pool, 100);
      for (const row of rows) {
        await this.cleanup(row);
        removed++;
      }
      if (rows.length < 100) return removed;
    }
  }
}

/** The hex digest of a hashing-thread state; undefined when the thread lost it (rebuilt or re-read then). */
async function hexOf(state: Sha256Batches | undefined): Promise<string | undefined> {
  return state
    ?.digest()
    .then((d) => d.toString('hex'))
    .catch(() => undefined);
}

const offsetMismatch = (offset: number) =>
  new AppError('upload_offset_mismatch', `The upload is at offset ${offset}.`, { offset });

const tooLarge = (length: number, offset: number, sent: number) =>
  new AppError('upload_too_large', `The upload is ${length} bytes; ${sent} more from ${offset} exceed it.`, {
    uploadLength: length,
    offset,
    sent,
  });

/** Runs {@link TusUploads.sweep} every `intervalSeconds` (0: never); returns the stop function. */
export function startTusSweep(tus: TusUploads, intervalSeconds: number, logger: Logger): () => Promise<void> {
  if (intervalSeconds <= 0) return () => Promise.resolve();
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= tus
      .sweep()
      .then((removed) => {
        if (removed > 0)
          logger.info({ removed }, 'tus sweep: leftovers of finished or expired uploads removed');
      })
      .catch((err: unknown) => logger.warn({ err }, 'tus sweep failed; retrying next interval'))
      .finally(() => {
        running = undefined;
      });
  }, intervalSeconds * 1000);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
