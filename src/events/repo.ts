/**
 * Reads of the events outbox (rows are written by the triggers of migration 0018, in the same
 * transaction as the change they describe).
 *
 * Order and completeness: an event id is drawn before its transaction commits, so ids can commit
 * out of order. Readers therefore go by (tx, id) and take only events of transactions older than
 * every transaction still running (`pg_snapshot_xmin`); an event of a later transaction that
 * committed first waits until the earlier ones are done. A cursor (tx, id) never skips an event.
 */
import type { Queryable } from '../db/pool.ts';

export const EVENTS_CHANNEL = 'mediary_events';

export type EventType =
  | 'media.uploaded'
  | 'media.processing'
  | 'media.progress'
  | 'media.ready'
  | 'media.failed'
  | 'media.deleted'
  | 'post.created'
  | 'post.updated'
  | 'post.deleted';

export const EVENT_TYPES: readonly EventType[] = [
  'media.uploaded',
  'media.processing',
  'media.progress',
  'media.ready',
  'media.failed',
  'media.deleted',
  'post.created',
  'post.updated',
  'post.deleted',
];

export interface StoredEvent {
  id: string;
  type: EventType;
  mediaId: string | null;
  postId: string | null;
  payload: Record<string, unknown>;
  createdAt: string;
}

/** Position in the (tx, id) order; tx and id as decimal strings (both are 64-bit). */
export interface Cursor {
  tx: string;
  id: string;
}

/** Which events a reader may see (checked in SQL on every read, so a removed share ends at once). */
export type EventScope =
  | { kind: 'device'; deviceId: string }
  | { kind: 'user'; userId: string }
  | { kind: 'media'; mediaId: string };

interface Row {
  id: string;
  tx: string;
  type: EventType;
  media_id: string | null;
  post_id: string | null;
  payload: Record<string, unknown>;
  created_at: Date;
  held: boolean;
}

// A user sees their own media and posts, and what is shared with a circle they own or belong to.
const MEMBER = `(c.owner_user_id = $3
  OR EXISTS (SELECT 1 FROM circle_members cm WHERE cm.circle_id = c.id AND cm.user_id = $3))`;
const USER_SCOPE = `(e.owner_user_id = $3
  OR (e.media_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM circle_shares s JOIN circles c ON c.id = s.circle_id
         WHERE ${MEMBER} AND (s.media_id = e.media_id
            OR s.post_id = (SELECT pm.post_id FROM post_media pm WHERE pm.media_id = e.media_id))))
  OR (e.post_id IS NOT NULL AND EXISTS (
        SELECT 1 FROM circle_shares s JOIN circles c ON c.id = s.circle_id
         WHERE ${MEMBER} AND s.post_id = e.post_id)))`;

function scopeSql(scope: EventScope): { where: string; value: string } {
  switch (scope.kind) {
    case 'device':
      return { where: 'e.device_id = $3::uuid', value: scope.deviceId };
    case 'media':
      return { where: 'e.media_id = $3::uuid', value: scope.mediaId };
    case 'user':
      return { where: USER_SCOPE, value: scope.userId };
  }
}

/** The cursor "from now on": every transaction not finished yet is still ahead of it. */
export async function currentCursor(db: Queryable): Promise<Cursor> {
  const { rows } = await db.query<{ tx: string }>(
    'SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS tx',
  );
  return { tx: rows[0]!.tx, id: '0' };
}

/**
 * The cursor just after event `id` (a client's Last-Event-ID). An id no longer stored (deleted by
 * retention) or never issued starts before everything still stored.
 */
export async function cursorAfter(db: Queryable, id: string): Promise<Cursor> {
  const { rows } = await db.query<{ tx: string }>('SELECT tx::text AS tx FROM events WHERE id = $1', [id]);
  return rows[0] ? { tx: rows[0].tx, id } : { tx: '0', id: '0' };
}

/**
 * The next events after `cursor` in the scope, oldest first. `more`: events exist in the scope
 * that are not released yet (an older transaction still runs) or beyond `limit`: read again soon.
 */
export async function readAfter(
  db: Queryable,
  scope: EventScope,
  cursor: Cursor,
  limit = 200,
): Promise<{ events: StoredEvent[]; cursor: Cursor; more: boolean }> {
  const { where, value } = scopeSql(scope);
  const { rows } = await db.query<Row>(
    `SELECT e.id::text AS id, e.tx::text AS tx, e.type, e.media_id, e.post_id, e.payload, e.created_at,
            e.tx >= pg_snapshot_xmin(pg_current_snapshot()) AS held
       FROM events e
      WHERE (e.tx, e.id) > ($1::xid8, $2::bigint) AND ${where}
      ORDER BY e.tx, e.id
      LIMIT ${limit + 1}`,
    [cursor.tx, cursor.id, value],
  );
  const events: StoredEvent[] = [];
  let next = cursor;
  let more = rows.length > limit;
  for (const r of rows.slice(0, limit)) {
    // Ordered by tx: once one is held back, all after it are too.
    if (r.held) {
      more = true;
      break;
    }
    events.push({
      id: r.id,
      type: r.type,
      mediaId: r.media_id,
      postId: r.post_id,
      payload: r.payload,
      createdAt: r.created_at.toISOString(),
    });
    next = { tx: r.tx, id: r.id };
  }
  return { events, cursor: next, more };
}

/** Retention: deletes events older than `days`; returns how many. */
export async function deleteOlderThan(db: Queryable, days: number): Promise<number> {
  const res = await db.query(
    `DELETE FROM events WHERE id IN (
       SELECT id FROM events WHERE created_at < now() - make_interval(days => $1) LIMIT 10000)`,
    [days],
  );
  return res.rowCount ?? 0;
}

/** A device's owner while it is not revoked (a stream token is re-checked on every use). */
export async function activeDeviceOwner(
  db: Queryable,
  deviceId: string,
): Promise<{ ownerUserId: string | null } | undefined> {
  const { rows } = await db.query<{ owner_user_id: string | null }>(
    'SELECT owner_user_id FROM devices WHERE id = $1 AND revoked_at IS NULL',
    [deviceId],
  );
  return rows[0] ? { ownerUserId: rows[0].owner_user_id } : undefined;
}
