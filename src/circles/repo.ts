/** SQL of circles, their members and what is shared with them (migration 0015_circles.sql). */
import type { Queryable } from '../db/pool.ts';

export interface CircleRow {
  id: string;
  owner_user_id: string;
  name: string;
  created_at: Date;
  /** Members other than the owner, in the order they were added. */
  members: string[];
}

export interface ShareRow {
  id: string;
  circle_id: string;
  shared_by: string;
  media_id: string | null;
  post_id: string | null;
  originals: boolean;
  shared_at: Date;
}

const SELECT = `SELECT c.*, COALESCE((SELECT array_agg(cm.user_id ORDER BY cm.added_at, cm.user_id)
    FROM circle_members cm WHERE cm.circle_id = c.id), '{}') AS members
  FROM circles c`;

export async function insertCircle(db: Queryable, c: { id: string; ownerUserId: string; name: string }) {
  await db.query('INSERT INTO circles (id, owner_user_id, name) VALUES ($1, $2, $3)', [
    c.id,
    c.ownerUserId,
    c.name,
  ]);
}

export async function findCircle(db: Queryable, id: string): Promise<CircleRow | undefined> {
  const { rows } = await db.query<CircleRow>(`${SELECT} WHERE c.id = $1`, [id]);
  return rows[0];
}

/** The circle, locked for a membership change. */
export async function lockCircle(db: Queryable, id: string): Promise<CircleRow | undefined> {
  const { rows } = await db.query<CircleRow>(`${SELECT} WHERE c.id = $1 FOR UPDATE OF c`, [id]);
  return rows[0];
}

/** Circles the user owns or belongs to, oldest first. */
export async function circlesOf(db: Queryable, userId: string): Promise<CircleRow[]> {
  const { rows } = await db.query<CircleRow>(
    `${SELECT} WHERE c.owner_user_id = $1
        OR EXISTS (SELECT 1 FROM circle_members cm WHERE cm.circle_id = c.id AND cm.user_id = $1)
      ORDER BY c.created_at, c.id`,
    [userId],
  );
  return rows;
}

export async function addMember(db: Queryable, circleId: string, userId: string): Promise<boolean> {
  const { rowCount } = await db.query(
    'INSERT INTO circle_members (circle_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING',
    [circleId, userId],
  );
  return rowCount === 1;
}

/** Removes a member and everything they shared into the circle. */
export async function removeMember(db: Queryable, circleId: string, userId: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM circle_members WHERE circle_id = $1 AND user_id = $2', [
    circleId,
    userId,
  ]);
  await db.query('DELETE FROM circle_shares WHERE circle_id = $1 AND shared_by = $2', [circleId, userId]);
  return rowCount === 1;
}

export async function deleteCircle(db: Queryable, id: string): Promise<void> {
  await db.query('DELETE FROM circles WHERE id = $1', [id]);
}

/** Shares a media or a post (idempotent: the existing share is returned, `originals` updated). */
export async function upsertShare(
  db: Queryable,
  s: {
    id: string;
    circleId: string;
    sharedBy: string;
    mediaId?: string;
    postId?: string;
    originals: boolean;
  },
): Promise<ShareRow> {
  const target = s.mediaId !== undefined ? 'media_id' : 'post_id';
  const { rows } = await db.query<ShareRow>(
    `INSERT INTO circle_shares (id, circle_id, shared_by, media_id, post_id, originals)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (circle_id, ${target}) WHERE ${target} IS NOT NULL
     DO UPDATE SET originals = EXCLUDED.originals
     RETURNING *`,
    [s.id, s.circleId, s.sharedBy, s.mediaId ?? null, s.postId ?? null, s.originals],
  );
  return rows[0]!;
}

export async function findShare(
  db: Queryable,
  circleId: string,
  shareId: string,
): Promise<ShareRow | undefined> {
  const { rows } = await db.query<ShareRow>('SELECT * FROM circle_shares WHERE circle_id = $1 AND id = $2', [
    circleId,
    shareId,
  ]);
  return rows[0];
}

export async function deleteShare(db: Queryable, shareId: string): Promise<void> {
  await db.query('DELETE FROM circle_shares WHERE id = $1', [shareId]);
}

/** Condition: user $1 is the circle's owner or one of its members. */
const IS_MEMBER = `(c.owner_user_id = $1
  OR EXISTS (SELECT 1 FROM circle_members cm WHERE cm.circle_id = c.id AND cm.user_id = $1))`;

/**
 * How user $1 may see media $2 through a circle of theirs: shared itself, or on a shared post.
 * Undefined when it is not shared with them at all.
 */
export async function mediaGrant(
  db: Queryable,
  userId: string,
  mediaId: string,
): Promise<{ originals: boolean } | undefined> {
  const { rows } = await db.query<{ originals: boolean | null }>(
    `SELECT bool_or(s.originals) AS originals
       FROM circle_shares s JOIN circles c ON c.id = s.circle_id
      WHERE ${IS_MEMBER}
        AND (s.media_id = $2 OR s.post_id = (SELECT pm.post_id FROM post_media pm WHERE pm.media_id = $2))`,
    [userId, mediaId],
  );
  const o = rows[0]?.originals;
  return o === null || o === undefined ? undefined : { originals: o };
}

export async function postGrant(
  db: Queryable,
  userId: string,
  postId: string,
): Promise<{ originals: boolean } | undefined> {
  const { rows } = await db.query<{ originals: boolean | null }>(
    `SELECT bool_or(s.originals) AS originals
       FROM circle_shares s JOIN circles c ON c.id = s.circle_id
      WHERE ${IS_MEMBER} AND s.post_id = $2`,
    [userId, postId],
  );
  const o = rows[0]?.originals;
  return o === null || o === undefined ? undefined : { originals: o };
}

/** Whether users $1 and $2 are in one circle (as its owner or a member): they see each other's profile images. */
export async function shareACircle(db: Queryable, a: string, b: string): Promise<boolean> {
  const { rowCount } = await db.query(
    `WITH people AS (
       SELECT id AS circle_id, owner_user_id AS user_id FROM circles WHERE owner_user_id IN ($1, $2)
       UNION SELECT circle_id, user_id FROM circle_members WHERE user_id IN ($1, $2))
     SELECT 1 FROM people x JOIN people y USING (circle_id) WHERE x.user_id = $1 AND y.user_id = $2 LIMIT 1`,
    [a, b],
  );
  return rowCount === 1;
}

/** Media ids shared with the circle (directly or on a shared post), newest shared first, paged. */
export async function sharedMediaIds(
  db: Queryable,
  circleId: string,
  q: { limit: number; after?: { sharedAt: string; id: string } | undefined },
): Promise<{ id: string; shared_at_text: string }[]> {
  const values: unknown[] = [circleId, q.limit];
  let keyset = '';
  if (q.after) {
    values.push(q.after.sharedAt, q.after.id);
    keyset = 'WHERE (x.shared_at, x.id) < ($3::timestamptz, $4::uuid)';
  }
  const { rows } = await db.query<{ id: string; shared_at_text: string }>(
    `SELECT x.id, x.shared_at::text AS shared_at_text FROM (
       SELECT DISTINCT ON (m.id) m.id, s.shared_at
         FROM circle_shares s
         LEFT JOIN post_media pm ON pm.post_id = s.post_id
         JOIN media m ON m.id = COALESCE(s.media_id, pm.media_id)
        WHERE s.circle_id = $1 AND m.status <> 'DELETED'
        ORDER BY m.id, s.shared_at
     ) x ${keyset}
     ORDER BY x.shared_at DESC, x.id DESC LIMIT $2`,
    values,
  );
  return rows;
}
