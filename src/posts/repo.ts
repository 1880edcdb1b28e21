/** SQL of posts and their ordered media (migration 0014_posts.sql). One function per statement. */
import type { Queryable } from '../db/pool.ts';

export interface PostRow {
  id: string;
  owner_user_id: string;
  caption: string;
  idempotency_key: string | null;
  version: number;
  created_at: Date;
  updated_at: Date;
  /** Keyset cursor component: created_at as Postgres text (microsecond precision). */
  created_at_text: string;
  /** The post's media ids in order (deleted media have left already). */
  media_ids: string[];
}

const SELECT = `SELECT p.*, p.created_at::text AS created_at_text,
    COALESCE((SELECT array_agg(pm.media_id::text ORDER BY pm.position)
      FROM post_media pm WHERE pm.post_id = p.id), '{}') AS media_ids
  FROM posts p`;

export async function findPost(db: Queryable, id: string): Promise<PostRow | undefined> {
  const { rows } = await db.query<PostRow>(`${SELECT} WHERE p.id = $1`, [id]);
  return rows[0];
}

/** The post row locked for an edit (its media list is rewritten whole under this lock). */
export async function lockPost(db: Queryable, id: string): Promise<PostRow | undefined> {
  const { rows } = await db.query<PostRow>(`${SELECT} WHERE p.id = $1 FOR UPDATE OF p`, [id]);
  return rows[0];
}

export async function findByIdempotencyKey(
  db: Queryable,
  ownerUserId: string,
  key: string,
): Promise<PostRow | undefined> {
  const { rows } = await db.query<PostRow>(
    `${SELECT} WHERE p.owner_user_id = $1 AND p.idempotency_key = $2`,
    [ownerUserId, key],
  );
  return rows[0];
}

/** Inserts the post; false when the owner's idempotency key already names one (a replay). */
export async function insertPost(
  db: Queryable,
  p: { id: string; ownerUserId: string; caption: string; idempotencyKey: string | null },
): Promise<boolean> {
  const { rowCount } = await db.query(
    `INSERT INTO posts (id, owner_user_id, caption, idempotency_key) VALUES ($1, $2, $3, $4)
     ON CONFLICT DO NOTHING`,
    [p.id, p.ownerUserId, p.caption, p.idempotencyKey],
  );
  return rowCount === 1;
}

export interface AttachCandidate {
  id: string;
  owner_user_id: string | null;
  device_owner_user_id: string | null;
  uploaded_by: 'device' | 'user';
  device_id: string | null;
  status: string;
  media_type: string;
  /** What it was uploaded for: `profile` images never go on a post (src/media/purposes.ts). */
  purpose: string;
  /** The post it is on now, if any. */
  post_id: string | null;
  /** The external entity it is attached to (gRPC AttachMedia), if any. */
  entity: string | null;
}

/**
 * The named media, locked (so a concurrent delete or attach waits for this transaction), with the
 * post each is on. Missing ids are simply absent.
 */
export async function lockMediaForAttach(db: Queryable, ids: string[]): Promise<AttachCandidate[]> {
  const { rows } = await db.query<AttachCandidate>(
    `SELECT m.id, m.owner_user_id, d.owner_user_id AS device_owner_user_id, m.uploaded_by, m.device_id,
            m.status, m.media_type, m.purpose, pm.post_id, ma.entity
       FROM media m
       LEFT JOIN devices d ON d.id = m.device_id
       LEFT JOIN post_media pm ON pm.media_id = m.id
       LEFT JOIN media_attachments ma ON ma.media_id = m.id
      WHERE m.id = ANY($1::uuid[])
      ORDER BY m.id
      FOR UPDATE OF m`,
    [ids],
  );
  return rows;
}

/** Replaces the post's media list with `mediaIds` in that order. */
export async function setPostMedia(db: Queryable, postId: string, mediaIds: string[]): Promise<void> {
  await db.query('DELETE FROM post_media WHERE post_id = $1', [postId]);
  if (mediaIds.length === 0) return;
  await db.query(
    `INSERT INTO post_media (post_id, media_id, position)
     SELECT $1, m.id, m.ord - 1 FROM unnest($2::uuid[]) WITH ORDINALITY AS m(id, ord)`,
    [postId, mediaIds],
  );
}

export async function updatePost(
  db: Queryable,
  id: string,
  change: { caption: string | undefined },
): Promise<void> {
  await db.query(
    `UPDATE posts SET caption = COALESCE($2, caption), version = version + 1, updated_at = now() WHERE id = $1`,
    [id, change.caption ?? null],
  );
}

export async function deletePost(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM posts WHERE id = $1', [id]);
}

/** Newest first by creation, ties by id; keyset pagination on (created_at, id). */
export async function listPosts(
  db: Queryable,
  q: { ownerUserId: string; after?: { createdAt: string; id: string } | undefined; limit: number },
): Promise<PostRow[]> {
  const values: unknown[] = [q.ownerUserId, q.limit];
  let keyset = '';
  if (q.after) {
    values.push(q.after.createdAt, q.after.id);
    keyset = 'AND (p.created_at, p.id) < ($3::timestamptz, $4::uuid)';
  }
  const { rows } = await db.query<PostRow>(
    `${SELECT} WHERE p.owner_user_id = $1 ${keyset} ORDER BY p.created_at DESC, p.id DESC LIMIT $2`,
    values,
  );
  return rows;
}

/**
 * `purpose = 'post'` media that no post took, and `profile` images never set as (or waiting to
 * become) a profile image, within the grace period, oldest first (the lifecycle job removes them).
 * Never device captures, never media on a post or a profile.
 */
export async function unattachedPostMedia(
  db: Queryable,
  createdBefore: Date,
  limit: number,
): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT m.id FROM media m
      WHERE m.purpose IN ('post', 'profile') AND m.status <> 'DELETED' AND m.uploaded_by = 'user'
        AND m.created_at < $1
        AND NOT EXISTS (SELECT 1 FROM post_media pm WHERE pm.media_id = m.id)
        AND NOT EXISTS (SELECT 1 FROM media_attachments ma WHERE ma.media_id = m.id)
        AND NOT EXISTS (SELECT 1 FROM profile_images p WHERE m.id IN (p.media_id, p.pending_media_id))
      ORDER BY m.created_at LIMIT $2`,
    [createdBefore, limit],
  );
  return rows.map((r) => r.id);
}

/**
 * Takes an unattached `post` media for removal: locks its row (an attach in flight holds the same
 * lock, so it commits first) and then looks for a post in a new statement, which sees that commit.
 * True when it may be deleted now, inside this transaction.
 */
export async function claimUnattached(tx: Queryable, mediaId: string): Promise<boolean> {
  const locked = await tx.query(
    `SELECT 1 FROM media WHERE id = $1 AND purpose IN ('post', 'profile') AND status <> 'DELETED' FOR UPDATE`,
    [mediaId],
  );
  if (locked.rowCount !== 1) return false;
  const { rows } = await tx.query<{ free: boolean }>(
    `SELECT NOT EXISTS (SELECT 1 FROM post_media WHERE media_id = $1)
        AND NOT EXISTS (SELECT 1 FROM media_attachments WHERE media_id = $1)
        AND NOT EXISTS (SELECT 1 FROM profile_images WHERE $1 IN (media_id, pending_media_id)) AS free`,
    [mediaId],
  );
  return rows[0]?.free === true;
}

/** Attaches each media to an external entity (they were checked and locked by the caller). */
export async function attachToEntity(db: Queryable, mediaIds: string[], entity: string): Promise<void> {
  await db.query(
    `INSERT INTO media_attachments (media_id, entity) SELECT unnest($1::uuid[]), $2
     ON CONFLICT (media_id) DO NOTHING`,
    [mediaIds, entity],
  );
}

/** Detaches those of `mediaIds` that are attached to `entity`; returns how many. */
export async function detachFromEntity(db: Queryable, mediaIds: string[], entity: string): Promise<number> {
  const { rowCount } = await db.query(
    'DELETE FROM media_attachments WHERE media_id = ANY($1::uuid[]) AND entity = $2',
    [mediaIds, entity],
  );
  return rowCount ?? 0;
}
