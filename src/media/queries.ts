/** Reading media: one record (checked, or explicitly unchecked), listings, usage, downloads. */
import type { Principal } from '../auth/principals.ts';
import type { Config } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import type { ObjectStore } from '../storage/types.ts';
import { assertDeviceScope, canAccess } from './access.ts';
import { archivedAs, assertOriginalReadable } from './archive.ts';
import { originalDisposition } from './catalog.ts';
import { decodeCursor, encodeCursor } from './cursor.ts';
import type { MediaStatus } from './lifecycle.ts';
import type { MediaLinks, MediaLinkSigner } from './links.ts';
import * as repo from './repo.ts';
import type { MediaRow } from './repo.ts';
import type { DeliveryMode, DownloadPlan } from './session-types.ts';
import type { ShareLookup } from './shares.ts';

export class MediaQueries {
  constructor(
    private readonly pool: Pool,
    private readonly store: ObjectStore,
    private readonly config: Pick<Config, 'quotas' | 'databasePreparedStatements'>,
    /** Signs the URLs media records carry (and the download/variant routes hand out). */
    readonly linkSigner: MediaLinkSigner,
    private readonly sharing?: ShareLookup,
  ) {}

  /** Loads media the principal may access; anything else (missing, others', deleted) is 404. */
  async get(principal: Principal, id: string): Promise<MediaRow> {
    const row = await this.loadUnchecked(id);
    if (!canAccess(principal, row)) throw new AppError('not_found', 'Media not found.');
    return row;
  }

  /**
   * Loads a live media WITHOUT any access check (missing or deleted is 404). Only for callers that
   * were authorised otherwise: a signed URL the route verified, or a row the caller itself just
   * loaded through {@link get}.
   */
  async loadUnchecked(id: string): Promise<MediaRow> {
    const row = await repo.findMedia(this.pool, id, { prepared: this.config.databasePreparedStatements });
    if (!row || row.status === 'DELETED') throw new AppError('not_found', 'Media not found.');
    return row;
  }

  /** Media rows by id, unchecked: the caller has already decided the principal may see them. */
  findManyUnchecked(ids: readonly string[]): Promise<MediaRow[]> {
    return repo.findMediaMany(this.pool, ids);
  }

  /**
   * Loads media the principal may view: what it may access ({@link get}), or, for a user, what was
   * shared with a circle of theirs (asked on every read: a removed member loses access at once).
   * `original`: the caller wants the original's bytes, which a share grants only with `originals`.
   * Everything else is 404. Writes use {@link get}: sharing never lets anyone change a media.
   */
  async view(principal: Principal, id: string, what: 'record' | 'original' = 'record'): Promise<MediaRow> {
    const row = await repo.findMedia(this.pool, id, { prepared: this.config.databasePreparedStatements });
    if (row && row.status !== 'DELETED') {
      if (canAccess(principal, row)) return row;
      if (principal.kind === 'user' && this.sharing) {
        const grant = await this.sharing.mediaGrant(principal.userId, row.id);
        if (grant && (what === 'record' || grant.originals)) return row;
      }
    }
    throw new AppError('not_found', 'Media not found.');
  }

  /**
   * The signed URLs of a media record for `viewer`: its variants, and its original only when the
   * viewer may download it (its own media; a circle share only with `originals`).
   */
  async links(m: MediaRow, viewer: Principal): Promise<MediaLinks> {
    let original = canAccess(viewer, m);
    if (!original && viewer.kind === 'user' && this.sharing) {
      original = (await this.sharing.mediaGrant(viewer.userId, m.id))?.originals === true;
    }
    return this.linkSigner.links(m, { original });
  }

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
      await assertDeviceScope(this.pool, principal, scope.deviceId);
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

  /**
   * An uploader's usage and limits (0 = no limit): a user's own (`me`), or a device's, for the
   * device itself and its owner. Anything else is 404.
   */
  async usage(principal: Principal, scope: { deviceId: string } | { userId: string }) {
    let key: string;
    if ('deviceId' in scope) {
      await assertDeviceScope(this.pool, principal, scope.deviceId);
      key = repo.usageKey({ kind: 'device', deviceId: scope.deviceId });
    } else {
      if (principal.kind !== 'user' || (scope.userId !== 'me' && scope.userId !== principal.userId))
        throw new AppError('not_found', 'User not found.');
      key = repo.usageKey(principal);
    }
    const limits = this.config.quotas['deviceId' in scope ? 'device' : 'user'];
    return { ...(await repo.usageOf(this.pool, key)), limits };
  }

  /** How to serve the original: a short-lived signed URL (redirect or JSON), or a proxied stream. */
  async download(principal: Principal, mediaId: string, mode: DeliveryMode): Promise<DownloadPlan> {
    const media = await this.view(principal, mediaId, 'original');
    if (!this.linkSigner.originalServed(media.status)) {
      throw new AppError('invalid_state', `The media is ${media.status}; there is nothing to download yet.`, {
        status: media.status,
      });
    }
    if (mode !== 'proxy') await assertOriginalReadable(this.store, media);
    if (mode === 'redirect') return { kind: 'redirect', ...(await this.linkSigner.original(media)) };
    if (mode === 'url') return { kind: 'url', ...(await this.linkSigner.original(media)) };
    const disposition = originalDisposition(media.mime_type, media.file_name);
    const stat = await this.store.stat(media.storage_key);
    if (!stat) throw new AppError('not_found', 'The stored object is missing.');
    return {
      kind: 'stream',
      contentType: media.mime_type,
      contentDisposition: disposition,
      etag: media.content_sha256 ? `"${media.content_sha256}"` : stat.etag,
      size: stat.size,
      lastModified: stat.lastModified,
      open: (range) => this.store.get(media.storage_key, range).catch(archivedAs(media.id)),
    };
  }
}
