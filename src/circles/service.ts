import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { setAuditContext } from '../audit/context.ts';
import type { Principal } from '../auth/principals.ts';
import { withTransaction, type Pool } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { decodeCursor, encodeCursor } from '../media/cursor.ts';
import { owningUser } from '../media/privacy.ts';
import * as mediaRepo from '../media/repo.ts';
import type { MediaRow } from '../media/repo.ts';
import type { CircleUploads, ShareGrant, ShareLookup } from '../media/shares.ts';
import * as postRepo from '../posts/repo.ts';
import * as repo from './repo.ts';
import type { CircleRow, ShareRow } from './repo.ts';

/** At most this many members in one circle (a family or a group of friends, not a broadcast list). */
export const MAX_MEMBERS = 200;

/**
 * Circles: a user's group of people that media and posts are shared with. The owner manages the
 * members; every member (the owner included) may share what they own into it and view what is
 * shared; nobody else learns the circle exists (404). Sharing only ever grants viewing.
 */
export class CircleService implements ShareLookup, CircleUploads {
  constructor(
    private readonly pool: Pool,
    private readonly logger: Logger,
  ) {}

  async create(principal: Principal, name: string): Promise<CircleRow> {
    const ownerUserId = userOf(principal);
    const id = randomUUID();
    await repo.insertCircle(this.pool, { id, ownerUserId, name });
    this.logger.info({ circleId: id }, 'circle created');
    return (await repo.findCircle(this.pool, id))!;
  }

  list(principal: Principal): Promise<CircleRow[]> {
    return repo.circlesOf(this.pool, userOf(principal));
  }

  /** The circle, for its owner and members; 404 for anyone else. */
  async get(principal: Principal, id: string): Promise<CircleRow> {
    const userId = userOf(principal);
    const circle = await repo.findCircle(this.pool, id);
    if (!circle || !isMember(circle, userId)) throw new AppError('not_found', 'Circle not found.');
    return circle;
  }

  async addMember(principal: Principal, id: string, memberId: string): Promise<CircleRow> {
    const userId = userOf(principal);
    await withTransaction(this.pool, async (tx) => {
      await setAuditContext(tx, principal);
      const circle = ownedForChange(await repo.lockCircle(tx, id), userId);
      if (memberId === circle.owner_user_id) return; // the owner is a member already
      if (circle.members.length >= MAX_MEMBERS && !circle.members.includes(memberId)) {
        throw new AppError('validation_failed', `A circle has at most ${MAX_MEMBERS} members.`, {
          field: 'userId',
          maxMembers: MAX_MEMBERS,
        });
      }
      await repo.addMember(tx, id, memberId);
    });
    return this.get(principal, id);
  }

  /**
   * The owner removes anyone; a member may leave. What the member shared leaves with them, and
   * they lose access at the next request (access is never cached; signed URLs already handed out
   * run out on their own short TTL).
   */
  async removeMember(principal: Principal, id: string, memberId: string): Promise<void> {
    const userId = userOf(principal);
    await withTransaction(this.pool, async (tx) => {
      await setAuditContext(tx, principal);
      const circle = await repo.lockCircle(tx, id);
      if (!circle || !isMember(circle, userId)) throw new AppError('not_found', 'Circle not found.');
      if (userId !== circle.owner_user_id && userId !== memberId) {
        throw new AppError('forbidden', 'Only the circle’s owner removes other members.');
      }
      if (!(await repo.removeMember(tx, id, memberId))) throw new AppError('not_found', 'No such member.');
    });
    this.logger.info({ circleId: id }, 'circle member removed');
  }

  async delete(principal: Principal, id: string): Promise<void> {
    const userId = userOf(principal);
    await withTransaction(this.pool, async (tx) => {
      await setAuditContext(tx, principal);
      ownedForChange(await repo.lockCircle(tx, id), userId);
      await repo.deleteCircle(tx, id);
    });
  }

  /** Shares a media or a post the caller owns with a circle they belong to. */
  async share(
    principal: Principal,
    id: string,
    what: { mediaId?: string | undefined; postId?: string | undefined; originals?: boolean | undefined },
  ): Promise<ShareRow> {
    const userId = userOf(principal);
    await this.get(principal, id);
    if ((what.mediaId === undefined) === (what.postId === undefined)) {
      throw new AppError('validation_failed', 'Send exactly one of mediaId and postId.', {
        field: 'mediaId',
      });
    }
    if (what.mediaId !== undefined) {
      const m = await mediaRepo.findMedia(this.pool, what.mediaId);
      if (!m || m.status === 'DELETED' || owningUser(m) !== userId)
        throw new AppError('not_found', 'Media not found.');
    } else {
      const p = await postRepo.findPost(this.pool, what.postId!);
      if (!p || p.owner_user_id !== userId) throw new AppError('not_found', 'Post not found.');
    }
    return withTransaction(this.pool, async (tx) => {
      await setAuditContext(tx, principal);
      return repo.upsertShare(tx, {
        id: randomUUID(),
        circleId: id,
        sharedBy: userId,
        ...(what.mediaId !== undefined ? { mediaId: what.mediaId } : { postId: what.postId! }),
        originals: what.originals ?? false,
      });
    });
  }

  /** The sharer or the circle's owner takes a share back. */
  async unshare(principal: Principal, id: string, shareId: string): Promise<void> {
    const userId = userOf(principal);
    const circle = await this.get(principal, id);
    const share = await repo.findShare(this.pool, id, shareId);
    if (!share) throw new AppError('not_found', 'Share not found.');
    if (share.shared_by !== userId && circle.owner_user_id !== userId) {
      throw new AppError('forbidden', 'Only who shared it, or the circle’s owner, takes a share back.');
    }
    await withTransaction(this.pool, async (tx) => {
      await setAuditContext(tx, principal);
      await repo.deleteShare(tx, shareId);
    });
  }

  /** What is shared with the circle, newest share first, for its members. */
  async media(
    principal: Principal,
    id: string,
    q: { limit: number; cursor?: string | undefined },
  ): Promise<{ items: MediaRow[]; nextCursor: string | null }> {
    await this.get(principal, id);
    const after = q.cursor !== undefined ? decodeCursor(q.cursor) : undefined;
    const rows = await repo.sharedMediaIds(this.pool, id, {
      limit: q.limit + 1,
      after: after && { sharedAt: after.capturedAt, id: after.id },
    });
    const page = rows.slice(0, q.limit);
    const found = new Map(
      (
        await mediaRepo.findMediaMany(
          this.pool,
          page.map((r) => r.id),
        )
      ).map((m) => [m.id, m]),
    );
    const last = page.at(-1);
    return {
      items: page.map((r) => found.get(r.id)).filter((m): m is MediaRow => m !== undefined),
      nextCursor:
        rows.length > q.limit && last ? encodeCursor({ capturedAt: last.shared_at_text, id: last.id }) : null,
    };
  }

  // ---- ShareLookup / CircleUploads (asked by the media and post use cases) --------------

  mediaGrant(userId: string, mediaId: string): Promise<ShareGrant | undefined> {
    return repo.mediaGrant(this.pool, userId, mediaId);
  }

  postGrant(userId: string, postId: string): Promise<ShareGrant | undefined> {
    return repo.postGrant(this.pool, userId, postId);
  }

  async admitUpload(userId: string, circleId: string): Promise<void> {
    const circle = await repo.findCircle(this.pool, circleId);
    if (!circle || !isMember(circle, userId)) throw new AppError('not_found', 'Circle not found.');
  }

  async shareUpload(userId: string, circleId: string, mediaId: string): Promise<void> {
    await withTransaction(this.pool, async (tx) => {
      await setAuditContext(tx, { kind: 'user', userId });
      await repo.upsertShare(tx, { id: randomUUID(), circleId, sharedBy: userId, mediaId, originals: false });
    });
  }
}

function userOf(p: Principal): string {
  if (p.kind !== 'user')
    throw new AppError('forbidden', 'Circles belong to users; a device key cannot use them.');
  return p.userId;
}

function isMember(c: CircleRow, userId: string): boolean {
  return c.owner_user_id === userId || c.members.includes(userId);
}

/** The circle for a change only its owner makes: 404 to strangers, 403 to members. */
function ownedForChange(c: CircleRow | undefined, userId: string): CircleRow {
  if (!c || !isMember(c, userId)) throw new AppError('not_found', 'Circle not found.');
  if (c.owner_user_id !== userId) throw new AppError('forbidden', 'Only the circle’s owner does that.');
  return c;
}
