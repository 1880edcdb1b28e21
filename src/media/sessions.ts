/** Upload sessions: creation, idempotent replays, quotas, and the upload instructions a session carries. */
import { randomUUID } from 'node:crypto';
import type { Principal } from '../auth/principals.ts';
import type { Config } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import type { ObjectStore } from '../storage/types.ts';
import { isReplayOf } from './access.ts';
import { admitDeclaredFile } from './catalog.ts';
import { sanitizeFileName } from './keys.ts';
import { admitPurpose } from './purposes.ts';
import { deviceMessageKey, ownerKey } from './layout.ts';
import type { MultipartUploads } from './multipart.ts';
import * as repo from './repo.ts';
import type { MediaRow } from './repo.ts';
import type { CreateSessionInput, SessionResult, UploadInstructions } from './session-types.ts';
import type { CircleUploads } from './shares.ts';
import type { UploadUrls } from './upload-urls.ts';

/** The resource a signed single-upload URL names. */

export class UploadSessions {
  constructor(
    private readonly pool: Pool,
    private readonly store: ObjectStore,
    private readonly urls: UploadUrls,
    private readonly config: Pick<Config, 'uploads' | 'databasePreparedStatements' | 'quotas'>,
    private readonly multipart?: MultipartUploads,
    private readonly sharing?: CircleUploads,
  ) {}

  /** The store new sessions upload to. */
  get backend(): ObjectStore['backend'] {
    return this.store.backend;
  }

  /**
   * Opens an upload session. `bytesViaServer`: the bytes come through this API in the same request
   * (a one-request form upload), so no upload URL or multipart plan is made: `upload` is null.
   */
  async createSession(
    principal: Principal,
    input: CreateSessionInput,
    idempotencyKey?: string,
    opts: { bytesViaServer?: boolean } = {},
  ): Promise<SessionResult> {
    const { mimeType, entry } = admitDeclaredFile(input, this.config.uploads);
    // messageId is the device's own idempotency key; a user who could set it could take a camera's
    // future message ids (found by a security review). Users send an Idempotency-Key header.
    if (principal.kind === 'user' && input.messageId !== undefined) {
      throw new AppError(
        'validation_failed',
        'messageId is for device uploads; users send an Idempotency-Key header.',
        { field: 'messageId' },
      );
    }

    // Who uploads: a device always as itself; a user for themselves or for a device they own.
    let deviceId: string | null = null;
    let deviceOwnerUserId: string | null = null;
    let ownerUserId: string | null;
    if (principal.kind === 'device') {
      if (input.deviceId !== undefined && input.deviceId !== principal.deviceId) {
        throw new AppError('not_found', 'Device not found.');
      }
      deviceId = principal.deviceId;
      ownerUserId = principal.ownerUserId;
      deviceOwnerUserId = principal.ownerUserId;
    } else {
      ownerUserId = principal.userId;
      if (input.deviceId !== undefined) {
        const dev = await repo.deviceOwner(this.pool, input.deviceId);
        if (!dev || dev.ownerUserId !== principal.userId)
          throw new AppError('not_found', 'Device not found.');
        deviceId = input.deviceId;
        deviceOwnerUserId = dev.ownerUserId;
      }
    }
    admitPurpose(
      input.purpose ?? 'library',
      { mediaType: entry.mediaType, mimeType, bytes: input.bytes, uploader: principal.kind },
      this.config.uploads,
    );
    if (input.circleId !== undefined) {
      if (principal.kind !== 'user' || !this.sharing)
        throw new AppError('validation_failed', 'Only users upload into a circle.', { field: 'circleId' });
      await this.sharing.admitUpload(principal.userId, input.circleId);
    }
    const cameraId = deviceId !== null ? (input.cameraId ?? 'default') : (input.cameraId ?? null);
    const messageId = principal.kind === 'device' ? (input.messageId ?? null) : null;
    const userKey = principal.kind === 'user' ? (idempotencyKey ?? null) : null;
    const now = new Date();
    const capturedAt = input.capturedAt !== undefined ? new Date(input.capturedAt) : now;
    const sha256 = input.sha256?.toLowerCase() ?? null;

    const storageKey =
      deviceId !== null && messageId !== null
        ? deviceMessageKey(deviceId, cameraId ?? 'default', capturedAt, messageId, entry.ext)
        : ownerKey(entry.mediaType, ownerUserId ?? deviceId ?? 'anonymous', now, entry.ext);
    const overQuota = await this.quotaProblem(principal, input.bytes);
    if (overQuota) {
      // A replay creates nothing: it is answered even at the limit.
      const existing = await this.findReplay(deviceId, cameraId, messageId, ownerUserId, userKey);
      if (!existing) throw overQuota;
      return this.replay(principal, existing, { mimeType, bytes: input.bytes, sha256 });
    }
    const id = randomUUID();
    const inserted = await repo.insertMedia(
      this.pool,
      {
        id,
        ownerUserId,
        deviceId,
        cameraId,
        messageId,
        idempotencyKey: userKey,
        capturedAt,
        reason: input.reason ?? null,
        mediaType: entry.mediaType,
        mimeType,
        fileName: sanitizeFileName(input.fileName),
        bytes: input.bytes,
        sha256,
        storageBackend: this.store.backend,
        storageKey,
        storageUri: this.store.uri(storageKey),
        uploadExpiresAt: new Date(now.getTime() + this.config.uploads.sessionTtlSeconds * 1000),
        uploadedBy: principal.kind,
        purpose: input.purpose ?? 'library',
        deviceOwnerUserId,
      },
      { prepared: this.config.databasePreparedStatements },
    );
    if (!inserted) {
      // A row with this idempotency key exists: an earlier request (a replay) or a concurrent one
      // that won the insert. Insert first, look up only on conflict: a new session is one round
      // trip (the common case), a replay two.
      const winner = await this.findReplay(deviceId, cameraId, messageId, ownerUserId, userKey);
      if (!winner)
        throw new Error(`media insert conflicted without an idempotency match (key ${storageKey})`);
      const replayed = await this.replay(principal, winner, { mimeType, bytes: input.bytes, sha256 });
      await this.shareIntoCircle(principal, input.circleId, replayed.media.id);
      return replayed;
    }
    await this.shareIntoCircle(principal, input.circleId, inserted.id);
    const upload = opts.bytesViaServer ? null : await this.uploadInstructions(inserted);
    return { created: true, media: inserted, upload };
  }

  /**
   * The quota a new session of `bytes` would exceed, as the error to answer; undefined when it
   * fits. Checked before the insert, not under a lock: concurrent sessions of one principal can
   * overshoot by at most the sessions in flight (documented).
   */
  private async quotaProblem(principal: Principal, bytes: number): Promise<AppError | undefined> {
    const limits = this.config.quotas[principal.kind];
    if (limits.storedBytes === 0 && limits.openSessions === 0) return undefined;
    const usage = await repo.usageOf(this.pool, repo.usageKey(principal));
    const details = { usage, limits };
    if (limits.openSessions > 0 && usage.openSessions >= limits.openSessions) {
      return new AppError(
        'quota_exceeded',
        `At most ${limits.openSessions} upload sessions may be open at once; complete or cancel some.`,
        { ...details, limit: 'openSessions' },
      );
    }
    if (limits.storedBytes > 0 && usage.storedBytes + bytes > limits.storedBytes) {
      return new AppError(
        'quota_exceeded',
        `This upload of ${bytes} bytes would exceed the storage quota of ${limits.storedBytes} bytes (${usage.storedBytes} used).`,
        { ...details, limit: 'storedBytes' },
      );
    }
    return undefined;
  }

  /** An upload into a circle is shared with it (again on a replay: a crash in between is mended). */
  private async shareIntoCircle(principal: Principal, circleId: string | undefined, mediaId: string) {
    if (circleId !== undefined && principal.kind === 'user' && this.sharing)
      await this.sharing.shareUpload(principal.userId, circleId, mediaId);
  }

  private async findReplay(
    deviceId: string | null,
    cameraId: string | null,
    messageId: string | null,
    ownerUserId: string | null,
    userKey: string | null,
  ): Promise<MediaRow | undefined> {
    if (deviceId !== null && messageId !== null)
      return repo.findByDeviceMessage(this.pool, deviceId, cameraId, messageId);
    if (ownerUserId !== null && userKey !== null)
      return repo.findByIdempotencyKey(this.pool, ownerUserId, userKey);
    return undefined;
  }

  private async replay(
    principal: Principal,
    existing: MediaRow,
    declared: { mimeType: string; bytes: number; sha256: string | null },
  ): Promise<SessionResult> {
    if (!isReplayOf(principal, existing)) {
      // Someone else's record under this key (made before the device changed hands, or by an
      // earlier version that let users set message ids): nothing of it is told, no URL is given.
      throw new AppError('idempotency_conflict', 'This messageId is taken; send a new one.');
    }
    const conflicts: Record<string, { existing: unknown; declared: unknown }> = {};
    if (existing.bytes !== declared.bytes)
      conflicts.bytes = { existing: existing.bytes, declared: declared.bytes };
    if (existing.mime_type !== declared.mimeType) {
      conflicts.mimeType = { existing: existing.mime_type, declared: declared.mimeType };
    }
    if (declared.sha256 !== null && existing.sha256 !== declared.sha256) {
      conflicts.sha256 = { existing: existing.sha256, declared: declared.sha256 };
    }
    if (Object.keys(conflicts).length > 0) {
      throw new AppError('idempotency_conflict', undefined, { mediaId: existing.id, conflicts });
    }
    if (existing.status === 'DELETED') {
      throw new AppError('invalid_state', 'This idempotency key belongs to media that was deleted.', {
        mediaId: existing.id,
        status: existing.status,
      });
    }
    const upload = existing.status === 'PENDING' ? await this.uploadInstructions(existing) : null;
    return { created: false, media: existing, upload };
  }

  private async uploadInstructions(media: MediaRow): Promise<UploadInstructions> {
    if (this.multipart?.applies(media.bytes)) return this.multipart.instructions(media);
    const ttl = Math.min(
      this.config.uploads.uploadUrlTtlSeconds,
      Math.max(1, Math.floor((media.upload_expires_at.getTime() - Date.now()) / 1000)),
    );
    const expiresAt = Math.floor(Date.now() / 1000) + ttl;
    // Exclusive: once bytes are in place, no later PUT with this URL replaces them.
    const expect = {
      contentType: media.mime_type,
      bytes: media.bytes,
      sha256: media.sha256 ?? undefined,
      exclusive: true,
    };
    if (this.store.capabilities.presignedPut && this.store.presignPut) {
      const signed = await this.store.presignPut(media.storage_key, expect, ttl);
      return { ...signed, expiresAt: new Date(expiresAt * 1000).toISOString() };
    }
    return {
      method: 'PUT',
      url: this.urls.upload(media.id, expiresAt),
      headers: { 'Content-Type': media.mime_type },
      expiresAt: new Date(expiresAt * 1000).toISOString(),
    };
  }
}
