/**
 * Profile images (the UploadThing note, 3.7). A user sets their avatar from a media they uploaded
 * with purpose `profile` (images only, square variants). The new image replaces the current one
 * only once it is READY: until then it waits (`pending`) and every read shows the current one. The
 * swap is one transaction under the user's row lock; the media it replaces (and a waiting image
 * that another replacement overtook, or that FAILED) is marked DELETED in that transaction and
 * its objects are removed after the commit through the media deletion use case. A crash between
 * the two leaves DELETED rows whose objects the orphan sweeper removes.
 *
 * Who settles a waiting image: the PUT itself (already READY), the database's NOTIFY when it
 * reaches READY or FAILED (migration 0030, {@link PROFILE_CHANNEL}), every read that finds it
 * settled, and every (re)connect of the listener. All of them run {@link ProfileService.settle},
 * which is idempotent.
 */
import type { Logger } from 'pino';
import type { Principal } from '../auth/principals.ts';
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import type { SignedUrl } from '../media/links.ts';
import { owningUser } from '../media/privacy.ts';
import { PROFILE_VARIANT_SIZES } from '../media/purposes.ts';
import type { MediaRow, MediaStatus } from '../media/repo.ts';
import { markDeletedWithin, type MediaService } from '../media/service.ts';
import * as repo from './repo.ts';

/** NOTIFY channel (payload: the user id) of a waiting image that reached a final state. */
export const PROFILE_CHANNEL = 'mediary_profiles';

export const PROFILE_SIZES = PROFILE_VARIANT_SIZES;
export type ProfileSize = (typeof PROFILE_VARIANT_SIZES)[number];

/** Who sees whose profile image besides its owner: people who share a circle (src/circles). */
export interface ProfileVisibility {
  shareACircle(a: string, b: string): Promise<boolean>;
}

export interface ProfileImage {
  userId: string;
  /** The image shown (READY), or null. */
  media: MediaRow | null;
  /** The image waiting to replace it (its owner only). */
  pending: { mediaId: string; status: MediaStatus } | null;
  /** Bumped by every swap. */
  version: number;
  updatedAt: Date | null;
}

const SETTLED: readonly (MediaStatus | null)[] = ['READY', 'FAILED', 'DELETED'];

export class ProfileService {
  constructor(
    private readonly pool: Pool,
    private readonly media: Pick<MediaService, 'findManyUnchecked' | 'removeObjects' | 'linkSigner'>,
    private readonly logger: Logger,
    private readonly visibility?: ProfileVisibility,
  ) {}

  /**
   * Sets the caller's profile image to `mediaId`: at once when it is READY (`swapped`), else once
   * it is. The last call wins: an image still waiting from an earlier call is dropped (deleted).
   */
  async set(principal: Principal, mediaId: string): Promise<{ swapped: boolean; image: ProfileImage }> {
    const userId = userOf(principal);
    const { retired, swapped } = await withTransaction(this.pool, async (tx) => {
      const row = await repo.lockOrCreate(tx, userId);
      const m = await repo.lockMedia(tx, mediaId);
      // Another user's media reads exactly as a missing one.
      if (!m || m.status === 'DELETED' || owningUser(m) !== userId) {
        throw new AppError('not_found', 'Media not found.');
      }
      if (m.purpose !== 'profile') {
        throw new AppError(
          'profile_image_refused',
          `Media uploaded with purpose "${m.purpose}" cannot be a profile image; upload it with purpose "profile".`,
          { reason: 'purpose', mediaId, purpose: m.purpose },
        );
      }
      if (m.status === 'FAILED') {
        throw new AppError('profile_image_refused', 'This image failed processing; upload another.', {
          reason: 'failed',
          mediaId,
        });
      }
      const drop = (id: string | null) => (id !== null && id !== m.id ? [id] : []);
      if (row.media_id === m.id) {
        // Already shown: setting it again only drops whatever was waiting.
        await repo.setImages(tx, userId, { mediaId: m.id, pendingId: null, swapped: false });
        return { retired: await retire(tx, drop(row.pending_media_id)), swapped: true };
      }
      if (m.status === 'READY') {
        await repo.setImages(tx, userId, { mediaId: m.id, pendingId: null, swapped: true });
        const gone = [...drop(row.pending_media_id), ...drop(row.media_id)];
        return { retired: await retire(tx, gone), swapped: true };
      }
      await repo.setImages(tx, userId, { mediaId: row.media_id, pendingId: m.id, swapped: false });
      return { retired: await retire(tx, drop(row.pending_media_id)), swapped: false };
    });
    await this.removeObjects(retired);
    this.logger.info({ userId, mediaId, swapped, retired: retired.length }, 'profile image set');
    return { swapped, image: await this.read(userId, true) };
  }

  /** The user's profile image (`me`: the caller's), for them and people who share a circle with them. */
  async get(principal: Principal, userParam: string): Promise<ProfileImage> {
    const userId = await this.visibleUser(principal, userParam);
    return this.read(userId, userId === userOf(principal));
  }

  /** A signed URL of one square variant of the user's current image; 404 when there is none. */
  async variantUrl(principal: Principal, userParam: string, size: ProfileSize): Promise<SignedUrl> {
    const userId = await this.visibleUser(principal, userParam);
    const { media } = await this.read(userId, false);
    const variant = media?.variants.find((v) => v.name === String(size));
    if (!media || !variant) throw new AppError('not_found', 'This user has no profile image.');
    return this.media.linkSigner.variant(media, variant);
  }

  /** Removes the caller's profile image (and one waiting), media included. */
  async remove(principal: Principal): Promise<void> {
    const userId = userOf(principal);
    const retired = await withTransaction(this.pool, async (tx) => {
      const row = await repo.lockProfile(tx, userId);
      if (!row || (row.media_id === null && row.pending_media_id === null)) return [];
      await repo.setImages(tx, userId, { mediaId: null, pendingId: null, swapped: true });
      return retire(
        tx,
        [row.media_id, row.pending_media_id].filter((id) => id !== null),
      );
    });
    await this.removeObjects(retired);
  }

  /**
   * Settles the user's waiting image if it reached a final state: READY replaces the current one
   * (which is deleted), FAILED or DELETED is dropped and the current one stays. Idempotent.
   */
  async settle(userId: string): Promise<void> {
    const retired = await withTransaction(this.pool, async (tx) => {
      const row = await repo.lockProfile(tx, userId);
      if (!row?.pending_media_id) return [];
      const pending = await repo.lockMedia(tx, row.pending_media_id);
      if (pending?.status === 'READY') {
        await repo.setImages(tx, userId, { mediaId: pending.id, pendingId: null, swapped: true });
        return retire(tx, row.media_id !== null ? [row.media_id] : []);
      }
      if (!pending || pending.status === 'FAILED' || pending.status === 'DELETED') {
        await repo.setImages(tx, userId, { mediaId: row.media_id, pendingId: null, swapped: false });
        return retire(tx, [row.pending_media_id]);
      }
      return [];
    });
    if (retired.length > 0) {
      await this.removeObjects(retired);
      this.logger.info({ userId, retired: retired.length }, 'profile image settled');
    }
  }

  /** Settles every waiting image that reached a final state (after a (re)connect: NOTIFYs may be lost). */
  async settleAll(): Promise<number> {
    let n = 0;
    for (;;) {
      const users = await repo.unsettledUsers(this.pool, 100);
      for (const u of users) await this.settle(u);
      n += users.length;
      if (users.length < 100) return n;
    }
  }

  private async read(userId: string, own: boolean): Promise<ProfileImage> {
    let state = await repo.findState(this.pool, userId);
    if (state?.pending_media_id && SETTLED.includes(state.pending_status)) {
      await this.settle(userId);
      state = await repo.findState(this.pool, userId);
    }
    const current = state?.media_id && state.media_status === 'READY' ? state.media_id : null;
    const media = current ? ((await this.media.findManyUnchecked([current]))[0] ?? null) : null;
    return {
      userId,
      media: media?.status === 'READY' ? media : null,
      pending:
        own && state?.pending_media_id && state.pending_status
          ? { mediaId: state.pending_media_id, status: state.pending_status }
          : null,
      version: state?.version ?? 0,
      updatedAt: state?.updated_at ?? null,
    };
  }

  /** The user `userParam` names, if the caller may see their profile image; else 404. */
  private async visibleUser(principal: Principal, userParam: string): Promise<string> {
    const me = userOf(principal);
    const userId = userParam === 'me' ? me : userParam;
    if (userId === me || (await this.visibility?.shareACircle(me, userId))) return userId;
    throw new AppError('not_found', 'User not found.');
  }

  private async removeObjects(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    for (const m of await this.media.findManyUnchecked(ids)) await this.media.removeObjects(m);
  }
}

/** Marks each media DELETED inside the swap's transaction; returns those it changed. */
async function retire(tx: Queryable, ids: readonly string[]): Promise<string[]> {
  const done: string[] = [];
  for (const id of ids) if (await markDeletedWithin(tx, id)) done.push(id);
  return done;
}

function userOf(p: Principal): string {
  if (p.kind !== 'user') {
    throw new AppError('forbidden', 'Profile images belong to users; a device key cannot use them.');
  }
  return p.userId;
}
