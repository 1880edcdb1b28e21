import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principals.ts';
import { setAuditContext } from '../audit/context.ts';
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { decodeCursor, encodeCursor } from '../media/cursor.ts';
import { owningUser } from '../media/privacy.ts';
import type { MediaRow } from '../media/repo.ts';
import { markDeletedWithin, type MediaService } from '../media/service.ts';
import type { ShareLookup } from '../media/shares.ts';
import * as repo from './repo.ts';
import type { PostRow } from './repo.ts';

export interface PostLimits {
  /** Media on one post. */
  maxMedia: number;
}

/** A post with its media rows, in the post's order. */
export interface PostWithMedia {
  post: PostRow;
  media: MediaRow[];
}

/** Why a media cannot go on a post (named per id in the 409's details). */
export type AttachProblem =
  'not_found' | 'not_uploaded' | 'failed' | 'on_another_post' | 'attached' | 'duplicate';
export interface AttachProblemEntry {
  mediaId: string;
  problem: AttachProblem;
}

/**
 * Why each of `ids` cannot be attached to `target` (a post of ours, or an entity of another
 * service; `{}`: something new). `found` are the rows that exist.
 */
export function attachProblems(
  found: repo.AttachCandidate[],
  ids: string[],
  userId: string,
  target: { postId?: string; entity?: string },
): AttachProblemEntry[] {
  const byId = new Map(found.map((m) => [m.id, m]));
  const problems: AttachProblemEntry[] = [];
  const seen = new Set<string>();
  for (const mediaId of ids) {
    const m = byId.get(mediaId);
    let problem: AttachProblem | undefined;
    if (seen.has(mediaId)) problem = 'duplicate';
    else if (!m || m.status === 'DELETED' || owningUser(m) !== userId) problem = 'not_found';
    else if (m.status === 'PENDING') problem = 'not_uploaded';
    else if (m.status === 'FAILED') problem = 'failed';
    else if (m.post_id !== null && m.post_id !== target.postId) problem = 'on_another_post';
    else if (m.entity !== null && m.entity !== target.entity) problem = 'attached';
    seen.add(mediaId);
    if (problem) problems.push({ mediaId, problem });
  }
  return problems;
}

/**
 * Posts: a user's caption and an ordered list of their media. Every write is one transaction that
 * locks what it changes; a media is on one post at most (a unique index has the last word).
 * Deleting a post deletes its media. Posts belong to users: devices get 403.
 */
export class PostService {
  constructor(
    private readonly pool: Pool,
    private readonly media: MediaService,
    private readonly limits: PostLimits,
    private readonly logger: Logger,
    private readonly sharing?: ShareLookup,
  ) {}

  async create(
    principal: Principal,
    input: { caption?: string | undefined; mediaIds: string[] },
    idempotencyKey?: string,
  ): Promise<{ created: boolean; post: PostWithMedia }> {
    const userId = userOf(principal);
    this.checkCount(input.mediaIds);
    const caption = input.caption ?? '';
    const id = randomUUID();
    const created = await this.attaching(async (tx) => {
      if (
        !(await repo.insertPost(tx, {
          id,
          ownerUserId: userId,
          caption,
          idempotencyKey: idempotencyKey ?? null,
        }))
      )
        return false;
      await this.checkAttachable(tx, userId, id, input.mediaIds);
      await repo.setPostMedia(tx, id, input.mediaIds);
      return true;
    });
    if (!created) {
      // The key names an earlier post: the same request again gets it back; another one a 409.
      const existing = await repo.findByIdempotencyKey(this.pool, userId, idempotencyKey!);
      if (!existing) throw new Error('post insert conflicted without an idempotency match');
      if (existing.caption !== caption || !sameList(existing.media_ids, input.mediaIds)) {
        throw new AppError('idempotency_conflict', 'This Idempotency-Key made a post with other content.', {
          postId: existing.id,
        });
      }
      return { created: false, post: await this.withMedia(existing) };
    }
    this.logger.info({ postId: id, media: input.mediaIds.length }, 'post created');
    return { created: true, post: await this.get(principal, id) };
  }

  /** The post, for its owner and the members of a circle it is shared with (read only). */
  async get(principal: Principal, id: string): Promise<PostWithMedia> {
    const userId = userOf(principal);
    const post = await repo.findPost(this.pool, id);
    if (!post) throw new AppError('not_found', 'Post not found.');
    if (post.owner_user_id !== userId && !(await this.sharing?.postGrant(userId, id))) {
      throw new AppError('not_found', 'Post not found.');
    }
    return this.withMedia(post);
  }

  async list(
    principal: Principal,
    ownerParam: string,
    q: { limit: number; cursor?: string | undefined },
  ): Promise<{ items: PostWithMedia[]; nextCursor: string | null }> {
    const userId = userOf(principal);
    if (ownerParam !== 'me' && ownerParam !== userId) throw new AppError('not_found', 'User not found.');
    const after = q.cursor !== undefined ? decodeCursor(q.cursor) : undefined;
    const rows = await repo.listPosts(this.pool, {
      ownerUserId: userId,
      after: after && { createdAt: after.capturedAt, id: after.id },
      limit: q.limit + 1,
    });
    const page = rows.slice(0, q.limit);
    const media = await this.media.findManyUnchecked(page.flatMap((p) => p.media_ids));
    const byId = new Map(media.map((m) => [m.id, m]));
    const last = page.at(-1);
    return {
      items: page.map((post) => ({ post, media: inOrder(post.media_ids, byId) })),
      nextCursor:
        rows.length > q.limit && last
          ? encodeCursor({ capturedAt: last.created_at_text, id: last.id })
          : null,
    };
  }

  /**
   * Edits a post: a new caption and/or its whole media list in the new order (reorder, add and
   * remove in one). Media left out become unattached. `version`, when sent, must be the current
   * one (the post changed since the caller read it → 409).
   */
  async update(
    principal: Principal,
    id: string,
    change: { caption?: string | undefined; mediaIds?: string[] | undefined; version?: number | undefined },
  ): Promise<PostWithMedia> {
    const userId = userOf(principal);
    if (change.mediaIds !== undefined) this.checkCount(change.mediaIds);
    await this.attaching(async (tx) => {
      const post = await repo.lockPost(tx, id);
      if (!post || post.owner_user_id !== userId) throw new AppError('not_found', 'Post not found.');
      if (change.version !== undefined && change.version !== post.version) {
        throw new AppError('version_conflict', undefined, { currentVersion: post.version });
      }
      if (change.mediaIds !== undefined) {
        await this.checkAttachable(tx, userId, id, change.mediaIds);
        await repo.setPostMedia(tx, id, change.mediaIds);
      }
      await repo.updatePost(tx, id, { caption: change.caption });
    });
    return this.get(principal, id);
  }

  /** Deletes the post and, with it, its media (their objects after the commit). */
  async delete(principal: Principal, id: string): Promise<void> {
    const userId = userOf(principal);
    const removed = await withTransaction(this.pool, async (tx) => {
      await setAuditContext(tx, principal);
      const post = await repo.lockPost(tx, id);
      if (!post || post.owner_user_id !== userId) throw new AppError('not_found', 'Post not found.');
      const media = await this.media.findManyUnchecked(post.media_ids);
      for (const m of media) await markDeletedWithin(tx, m.id);
      await repo.deletePost(tx, id);
      return media;
    });
    // A crash here leaves DELETED rows whose objects the orphan sweeper removes after its grace.
    for (const m of removed) await this.media.removeObjects(m);
    this.logger.info({ postId: id, media: removed.length }, 'post deleted with its media');
  }

  private checkCount(mediaIds: string[]) {
    if (mediaIds.length > this.limits.maxMedia) {
      throw new AppError('validation_failed', `A post holds at most ${this.limits.maxMedia} media.`, {
        field: 'mediaIds',
        maxMedia: this.limits.maxMedia,
      });
    }
  }

  /**
   * Every id exists, is the caller's, has its bytes, is on no other post or entity, and appears
   * once; otherwise a 409 naming each offending id and why. Locks the media rows until the commit.
   */
  private async checkAttachable(tx: Queryable, userId: string, postId: string, ids: string[]) {
    const problems = attachProblems(await repo.lockMediaForAttach(tx, [...new Set(ids)]), ids, userId, {
      postId,
    });
    if (problems.length > 0) throw new AppError('media_not_attachable', undefined, { problems });
  }

  // ---- attachments of other services' entities (the gRPC API) ---------------------------

  /** What would stop `ids` from being attached to something new (empty: all can be). */
  async validateAttachable(principal: Principal, ids: string[]): Promise<AttachProblemEntry[]> {
    const userId = userOf(principal);
    this.checkCount(ids);
    return attachProblems(await repo.lockMediaForAttach(this.pool, [...new Set(ids)]), ids, userId, {});
  }

  /** Attaches media to an entity of another service, all or nothing (idempotent per entity). */
  async attachToEntity(principal: Principal, ids: string[], entity: string): Promise<MediaRow[]> {
    const userId = userOf(principal);
    this.checkCount(ids);
    await withTransaction(this.pool, async (tx) => {
      const problems = attachProblems(await repo.lockMediaForAttach(tx, [...new Set(ids)]), ids, userId, {
        entity,
      });
      if (problems.length > 0) throw new AppError('media_not_attachable', undefined, { problems });
      await repo.attachToEntity(tx, ids, entity);
    });
    return inOrder(ids, new Map((await this.media.findManyUnchecked(ids)).map((m) => [m.id, m])));
  }

  /** Detaches the caller's media from the entity; returns how many were attached to it. */
  async detachFromEntity(principal: Principal, ids: string[], entity: string): Promise<number> {
    const userId = userOf(principal);
    const mine = (await this.media.findManyUnchecked(ids)).filter((m) => owningUser(m) === userId);
    return repo.detachFromEntity(
      this.pool,
      mine.map((m) => m.id),
      entity,
    );
  }

  /**
   * Runs a write that attaches media. Two requests attaching the same media at once: the row
   * locks order them, and the unique index catches what a lock cannot (a media added to two new
   * posts), answered like the check's own refusal.
   */
  private async attaching<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    try {
      return await withTransaction(this.pool, fn);
    } catch (err) {
      if ((err as { code?: string; constraint?: string }).constraint === 'post_media_media_uq') {
        throw new AppError('media_not_attachable', 'A media was attached to another post meanwhile; retry.');
      }
      throw err;
    }
  }

  private async withMedia(post: PostRow): Promise<PostWithMedia> {
    const media = await this.media.findManyUnchecked(post.media_ids);
    return { post, media: inOrder(post.media_ids, new Map(media.map((m) => [m.id, m]))) };
  }
}

function userOf(p: Principal): string {
  if (p.kind !== 'user')
    throw new AppError('forbidden', 'Posts belong to users; a device key cannot use them.');
  return p.userId;
}

function inOrder(ids: string[], byId: Map<string, MediaRow>): MediaRow[] {
  return ids
    .map((id) => byId.get(id))
    .filter((m): m is MediaRow => m !== undefined && m.status !== 'DELETED');
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
