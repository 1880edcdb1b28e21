/**
 * Originals in archive storage (docs/DEPLOY-TIERING.md): reads that find one answer a clear
 * `409 archived` naming the restore request, and the restore use case itself
 * (`POST|GET /media/{id}/restore`). Stores without archive classes (local, GCS) always answer
 * `readable`.
 */
import type { Principal } from '../auth/principals.ts';
import { AppError } from '../errors.ts';
import { ObjectArchivedError, type ArchiveState, type ArchiveStatus } from '../storage/archive.ts';
import type { ObjectStore } from '../storage/types.ts';
import type { MediaQueries } from './queries.ts';
import type { MediaRow } from './repo.ts';

/**
 * The API path that restores a media's original (named in every `archived` error and in the
 * `original_archived` failure). The one API path below the HTTP layer: a relative path in an
 * error, not a URL handed out, and threading a port into every read that can meet an archived
 * original is not worth it. Must equal src/http/urls.ts `paths.restore` (test/unit/public-urls.test.ts).
 */
// eslint-disable-next-line no-restricted-syntax -- see above
export const restorePath = (mediaId: string) => `/api/v1/media/${mediaId}/restore`;

/** The client's error for an original that must be restored before it can be read. */
export function archivedError(mediaId: string, status?: ArchiveStatus): AppError {
  const restoring = status?.state === 'restoring';
  return new AppError(
    'archived',
    restoring
      ? 'The original is being restored from archive storage; retry when the restore has finished (GET details.restore.href).'
      : undefined,
    {
      mediaId,
      state: restoring ? 'restoring' : 'archived',
      storageClass: status?.storageClass ?? null,
      restore: { method: 'POST', href: restorePath(mediaId) },
    },
  );
}

/** For a read of `mediaId`'s original: the store's ObjectArchivedError becomes `409 archived`. */
export function archivedAs(mediaId: string): (err: unknown) => never {
  return (err) => {
    throw err instanceof ObjectArchivedError ? archivedError(mediaId) : err;
  };
}

/**
 * Before a URL of the original is handed out (the client reads it from the store, not through
 * us): when the configured rule can have archived it (old enough), ask the store. Younger
 * originals cost nothing.
 */
export async function assertOriginalReadable(store: ObjectStore, media: MediaRow, now = new Date()) {
  if (!store.archive?.mayBeArchived(media.created_at, now)) return;
  const status = await store.archive.status(media.storage_key);
  if (status?.state === 'archived' || status?.state === 'restoring') throw archivedError(media.id, status);
}

export interface RestoreStatus {
  mediaId: string;
  state: ArchiveState;
  storageClass: string | null;
  restoredUntil: Date | null;
}

/** Statuses whose original is stored (a FAILED media that completed keeps its original). */
const HAS_ORIGINAL = (m: MediaRow) =>
  m.status === 'UPLOADED' ||
  m.status === 'PROCESSING' ||
  m.status === 'READY' ||
  (m.status === 'FAILED' && m.detected_mime_type !== null);

export class MediaRestores {
  constructor(
    private readonly queries: MediaQueries,
    private readonly store: ObjectStore,
  ) {}

  /** Where the original stands: whoever may download it may ask. */
  async status(principal: Principal, mediaId: string): Promise<RestoreStatus> {
    const m = await this.queries.view(principal, mediaId, 'original');
    return this.statusOf(m, (key) => this.store.archive!.status(key));
  }

  /**
   * Asks the store to restore the original (a no-op unless it is archived). Only the owner may:
   * a restore costs money (and Expedited ones a lot).
   */
  async restore(principal: Principal, mediaId: string): Promise<RestoreStatus> {
    const m = await this.queries.get(principal, mediaId);
    return this.statusOf(m, (key) => this.store.archive!.restore(key));
  }

  private async statusOf(
    m: MediaRow,
    ask: (key: string) => Promise<ArchiveStatus | undefined>,
  ): Promise<RestoreStatus> {
    if (!HAS_ORIGINAL(m)) {
      throw new AppError('invalid_state', `The media is ${m.status}; it has no stored original.`, {
        status: m.status,
      });
    }
    if (!this.store.archive) {
      return { mediaId: m.id, state: 'readable', storageClass: null, restoredUntil: null };
    }
    const s = await ask(m.storage_key);
    if (!s) throw new AppError('not_found', 'The stored object is missing.');
    return { mediaId: m.id, state: s.state, storageClass: s.storageClass, restoredUntil: s.restoredUntil };
  }
}
