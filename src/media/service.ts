import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principals.ts';
import type { Config } from '../config.ts';
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { hashStoredObject, sniffStoredType } from '../storage/inspect.ts';
import type { UrlSigner } from '../storage/signing.ts';
import { ObjectExistsError, type ObjectStore, type PartRef } from '../storage/types.ts';
import { admitDeclaredFile, admitUploadHeaders, catalogEntry, originalDisposition } from './catalog.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import type { MultipartUploads } from './multipart.ts';
import type { CircleUploads, ShareLookup } from './shares.ts';
import { deviceMessageKey, ownerKey, sanitizeFileName } from './keys.ts';
import { owningUser } from './privacy.ts';
import * as repo from './repo.ts';
import type { MediaRow, MediaStatus } from './repo.ts';
import { DOWNLOADABLE, MediaLinkSigner, type MediaLinks } from './links.ts';
import { StreamingUploads } from './upload-claims.ts';
import type {
  CreateSessionInput,
  DeliveryMode,
  DownloadPlan,
  ProcessingQueue,
  SessionResult,
  UploadInstructions,
} from './session-types.ts';

export type {
  CreateSessionInput,
  DeliveryMode,
  DownloadPlan,
  ProcessingQueue,
  PutInstructions,
  SessionResult,
  UploadInstructions,
} from './session-types.ts';

export const uploadResource = (mediaId: string) => `media/${mediaId}/upload`;

/**
 * A media its device uploaded itself accepts no more bytes, and is not completed, once that device
 * is revoked (or deleted): signed URLs handed out before the revocation stop working. (A session a
 * user made naming the device is the user's, and stays open.)
 */
export async function assertDeviceActive(
  db: Pool,
  media: Pick<MediaRow, 'device_id' | 'uploaded_by'>,
): Promise<void> {
  if (
    media.uploaded_by === 'device' &&
    media.device_id !== null &&
    !(await repo.deviceActive(db, media.device_id))
  ) {
    throw new AppError('device_revoked');
  }
}

/** Upload sessions, completion, reads, listing and deletion: the media use cases. */
export class MediaService {
  /** One upload at a time per media (in this process). */
  private readonly streaming = new StreamingUploads();

  constructor(
    private readonly pool: Pool,
    private readonly store: ObjectStore,
    private readonly queue: ProcessingQueue,
    private readonly signer: UrlSigner,
    private readonly config: Pick<Config, 'publicUrl' | 'uploads' | 'databasePreparedStatements' | 'quotas'>,
    private readonly logger: Logger,
    private readonly multipart?: MultipartUploads,
    private readonly sharing?: ShareLookup & CircleUploads,
  ) {
    this.linkSigner = new MediaLinkSigner(store, config.uploads.downloadUrlTtlSeconds);
  }

  /** Signs the URLs media records carry (and the download/variant routes hand out). */
  readonly linkSigner: MediaLinkSigner;

  /**
   * The signed URLs of a media record for `viewer`: its variants, and its original only when the
   * viewer may download it (its own media; a circle share only with `originals`).
   */
  async links(m: MediaRow, viewer: Principal): Promise<MediaLinks> {
    let original = MediaService.canAccess(viewer, m);
    if (!original && viewer.kind === 'user' && this.sharing) {
      original = (await this.sharing.mediaGrant(viewer.userId, m.id))?.originals === true;
    }
    return this.linkSigner.links(m, { original });
  }

  // ---- access ---------------------------------------------------------------------------

  /**
   * The principal may see and manage this media: a device what it uploaded itself (not what a user
   * uploaded naming it), a user what belongs to them (see {@link owningUser}: a camera that changes
   * hands does not take its earlier captures along).
   */
  static canAccess(
    p: Principal,
    m: Pick<MediaRow, 'device_id' | 'owner_user_id' | 'device_owner_user_id' | 'uploaded_by'>,
  ): boolean {
    if (p.kind === 'device') return m.uploaded_by === 'device' && m.device_id === p.deviceId;
    return owningUser(m) === p.userId;
  }

  /**
   * A session request repeats `existing` only if the same principal, in the same ownership, made
   * it: the read rule ({@link canAccess}) plus, for a device, the owner it had then. A camera that
   * changed hands must not complete (or learn about) a session its previous owner opened.
   */
  static isReplayOf(p: Principal, existing: MediaRow): boolean {
    if (!MediaService.canAccess(p, existing)) return false;
    return p.kind === 'user' || owningUser(existing) === p.ownerUserId;
  }

  /** Loads media the principal may access; anything else (missing, others', deleted) is 404. */
  async get(principal: Principal | null, id: string): Promise<MediaRow> {
    const row = await repo.findMedia(this.pool, id);
    if (!row || row.status === 'DELETED' || (principal !== null && !MediaService.canAccess(principal, row))) {
      throw new AppError('not_found', 'Media not found.');
    }
    return row;
  }

  /**
   * Loads media the principal may view: what it may access ({@link get}), or, for a user, what was
   * shared with a circle of theirs (asked on every read: a removed member loses access at once).
   * `original`: the caller wants the original's bytes, which a share grants only with `originals`.
   * Everything else is 404. Writes use {@link get}: sharing never lets anyone change a media.
   */
  async view(principal: Principal, id: string, what: 'record' | 'original' = 'record'): Promise<MediaRow> {
    const row = await repo.findMedia(this.pool, id);
    if (row && row.status !== 'DELETED') {
      if (MediaService.canAccess(principal, row)) return row;
      if (principal.kind === 'user' && this.sharing) {
        const grant = await this.sharing.mediaGrant(principal.userId, row.id);
        if (grant && (what === 'record' || grant.originals)) return row;
      }
    }
    throw new AppError('not_found', 'Media not found.');
  }

  // ---- sessions -------------------------------------------------------------------------

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
    if (principal.kind === 'device' && input.purpose === 'post') {
      throw new AppError('validation_failed', 'Posts are made by users; a device uploads captures.', {
        field: 'purpose',
      });
    }
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
   * An uploader's usage and limits (0 = no limit): a user's own (`me`), or a device's, for the
   * device itself and its owner. Anything else is 404.
   */
  async usage(principal: Principal, scope: { deviceId: string } | { userId: string }) {
    let key: string;
    if ('deviceId' in scope) {
      const dev = await repo.deviceOwner(this.pool, scope.deviceId);
      const allowed =
        dev !== undefined &&
        (principal.kind === 'device'
          ? principal.deviceId === scope.deviceId
          : dev.ownerUserId === principal.userId);
      if (!allowed) throw new AppError('not_found', 'Device not found.');
      key = repo.usageKey({ kind: 'device', deviceId: scope.deviceId });
    } else {
      if (principal.kind !== 'user' || (scope.userId !== 'me' && scope.userId !== principal.userId))
        throw new AppError('not_found', 'User not found.');
      key = repo.usageKey(principal);
    }
    const limits = this.config.quotas['deviceId' in scope ? 'device' : 'user'];
    return { ...(await repo.usageOf(this.pool, key)), limits };
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
    if (!MediaService.isReplayOf(principal, existing)) {
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
    const sig = this.signer.sign('PUT', uploadResource(media.id), expiresAt);
    const q = new URLSearchParams({ expires: String(expiresAt), sig });
    return {
      method: 'PUT',
      url: `${this.config.publicUrl}/api/v1/media/${media.id}/upload?${q.toString()}`,
      headers: { 'Content-Type': media.mime_type },
      expiresAt: new Date(expiresAt * 1000).toISOString(),
    };
  }

  // ---- upload through the API (local store) --------------------------------------------

  /** Verifies a signed upload URL for this media; throws 403 when it does not hold. */
  verifyUploadSignature(mediaId: string, expires: string, sig: string): void {
    const verdict = this.signer.verify('PUT', uploadResource(mediaId), Number(expires), sig);
    if (verdict === 'expired') throw new AppError('signature_expired');
    if (verdict === 'invalid') throw new AppError('signature_invalid');
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
    const media = await this.get(principal, mediaId);
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
    const now = await this.get(principal, mediaId);
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

  // ---- completion -----------------------------------------------------------------------

  /**
   * Verifies the stored object (presence, size, sha256, type sniffed from its first bytes), then
   * sets UPLOADED and enqueues processing in one transaction. Idempotent.
   */
  async complete(principal: Principal, mediaId: string, parts?: PartRef[]): Promise<MediaRow> {
    const media = await this.get(principal, mediaId);
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
      if (joined.multipart) {
        await repo.markFailed(this.pool, media.id, { code: 'checksum_mismatch', message: 'sha256 mismatch' });
      }
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
      await repo.markFailed(this.pool, media.id, { code: 'type_mismatch', message });
      throw new AppError('type_mismatch', message, { declared: media.mime_type, detected: detected ?? null });
    }
    // The answer is the state this request committed; a worker may move it on a moment later.
    const completed = await withTransaction(this.pool, async (tx) => {
      const uploaded = await repo.markUploaded(tx, media.id, {
        sha256,
        etag: stat.etag,
        detectedMime: detected,
        backend: this.store.backend,
        uri: this.store.uri(media.storage_key),
      });
      if (uploaded) {
        await this.queue.enqueueProcessing(tx, media.id);
      }
      return repo.findMedia(tx, media.id);
    });
    this.logger.info({ mediaId, bytes: media.bytes }, 'upload completed');
    return completed ?? this.get(null, mediaId);
  }

  private async joinMultipart(media: MediaRow, parts: PartRef[] | undefined) {
    if (this.multipart) return this.multipart.complete(media, parts);
    if (parts !== undefined)
      throw new AppError('not_multipart', 'This media was a single upload: send no parts.');
    return { multipart: false, sha256: undefined };
  }

  // ---- reads ----------------------------------------------------------------------------

  async list(
    principal: Principal,
    scope: { deviceId: string } | { userId: string },
    q: {
      limit: number;
      cursor?: string | undefined;
      cameraId?: string | undefined;
      status?: MediaStatus | undefined;
      since?: string | undefined;
      until?: string | undefined;
    },
  ): Promise<{ items: MediaRow[]; nextCursor: string | null }> {
    let repoScope: repo.ListQuery['scope'];
    if ('deviceId' in scope) {
      // `me`: a device key lists its own media without knowing its id.
      if (scope.deviceId === 'me') {
        if (principal.kind !== 'device') throw new AppError('not_found', 'Device not found.');
        scope = { deviceId: principal.deviceId };
      }
      const dev = await repo.deviceOwner(this.pool, scope.deviceId);
      const allowed =
        dev !== undefined &&
        (principal.kind === 'device'
          ? principal.deviceId === scope.deviceId
          : dev.ownerUserId === principal.userId);
      if (!allowed) throw new AppError('not_found', 'Device not found.');
      // A user lists the device's captures that are theirs (not a previous owner's).
      repoScope = {
        deviceId: scope.deviceId,
        ...(principal.kind === 'user' ? { forUser: principal.userId } : { uploadedBy: 'device' as const }),
      };
    } else {
      const userId = scope.userId === 'me' && principal.kind === 'user' ? principal.userId : scope.userId;
      if (principal.kind !== 'user' || principal.userId !== userId)
        throw new AppError('not_found', 'User not found.');
      repoScope = { ownerUserId: userId };
    }
    const rows = await repo.listMedia(this.pool, {
      scope: repoScope,
      cameraId: q.cameraId,
      status: q.status,
      since: q.since !== undefined ? new Date(q.since) : undefined,
      until: q.until !== undefined ? new Date(q.until) : undefined,
      after: q.cursor !== undefined ? decodeCursor(q.cursor) : undefined,
      limit: q.limit + 1,
    });
    const items = rows.slice(0, q.limit);
    const last = items.at(-1);
    const nextCursor =
      rows.length > q.limit && last ? encodeCursor({ capturedAt: last.captured_at_text, id: last.id }) : null;
    return { items, nextCursor };
  }

  /** How to serve the original: a short-lived signed URL (redirect or JSON), or a proxied stream. */
  async download(principal: Principal, mediaId: string, mode: DeliveryMode): Promise<DownloadPlan> {
    const media = await this.view(principal, mediaId, 'original');
    if (!DOWNLOADABLE.includes(media.status)) {
      throw new AppError('invalid_state', `The media is ${media.status}; there is nothing to download yet.`, {
        status: media.status,
      });
    }
    if (mode === 'redirect') return { kind: 'redirect', ...(await this.linkSigner.original(media)) };
    if (mode === 'url') return { kind: 'url', ...(await this.linkSigner.original(media)) };
    const disposition = originalDisposition(media.mime_type, media.file_name);
    const stat = await this.store.stat(media.storage_key);
    if (!stat) throw new AppError('not_found', 'The stored object is missing.');
    return {
      kind: 'proxy',
      key: media.storage_key,
      contentType: media.mime_type,
      contentDisposition: disposition,
      etag: media.content_sha256 ? `"${media.content_sha256}"` : stat.etag,
      size: stat.size,
      lastModified: stat.lastModified,
    };
  }

  // ---- deletion -------------------------------------------------------------------------

  async delete(principal: Principal, mediaId: string): Promise<void> {
    const media = await this.get(principal, mediaId);
    if (!(await repo.markDeleted(this.pool, media.id))) throw new AppError('not_found', 'Media not found.');
    await this.removeObjects(media);
  }

  /**
   * Marks media DELETED inside the caller's transaction (a post deleted with its media); call
   * {@link removeObjects} for each after the commit. False if it was deleted already.
   */
  static markDeletedWithin(tx: Queryable, mediaId: string): Promise<boolean> {
    return repo.markDeleted(tx, mediaId);
  }

  /**
   * Removes a DELETED media's objects: the original and everything derived from it. Best effort:
   * what fails now, the orphan sweeper removes later (a DELETED row references nothing).
   */
  async removeObjects(media: Pick<MediaRow, 'id' | 'storage_key'>): Promise<void> {
    try {
      await this.store.delete(media.storage_key);
      // Read after the row is DELETED: a job that finished in between has written its variants
      // by now (no job can add any later), so none is missed.
      for (const key of await repo.derivedObjectKeys(this.pool, media.id)) await this.store.delete(key);
    } catch (err) {
      this.logger.warn(
        { err, mediaId: media.id },
        'could not remove the deleted object now; left for the sweeper',
      );
    }
  }

  /** Media rows by id, unchecked: the caller has already decided the principal may see them. */
  findManyUnchecked(ids: readonly string[]): Promise<MediaRow[]> {
    return repo.findMediaMany(this.pool, ids);
  }

  openObject(key: string, range?: { start: number; end: number }) {
    return this.store.get(key, range);
  }
}
