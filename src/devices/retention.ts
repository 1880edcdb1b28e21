/**
 * Per-device retention (issue 18, migration 0031): an owner sets `retention_days` on a camera and
 * its captures older than that are deleted by the retention job (src/operations/device-retention.ts,
 * once per cluster). What counts, decided once here for the job and its dry-run preview:
 *
 * - captures are the media the device uploaded itself (`uploaded_by = 'device'`), not a user's
 *   uploads that name the device;
 * - "older than N days" holds when both the capture time and the arrival at the server are older:
 *   a camera whose clock is years behind must not have today's uploads deleted at once;
 * - media on a post, or attached to another service's entity, are kept: a post is a deliberate
 *   publication, retention is for the raw stream. They fall under retention again once detached.
 */
import type { Queryable } from '../db/pool.ts';

/** At most this many captures are listed by a preview (the counts cover all). */
export const PREVIEW_ITEMS = 100;

const EXPIRED = `
  m.device_id = $1 AND m.uploaded_by = 'device' AND m.status <> 'DELETED'
  AND m.captured_at < $2 AND m.created_at < $2`;
const PINNED = `(EXISTS (SELECT 1 FROM post_media p WHERE p.media_id = m.id)
  OR EXISTS (SELECT 1 FROM media_attachments a WHERE a.media_id = m.id))`;

export const retentionCutoff = (days: number, now: Date) => new Date(now.getTime() - days * 86_400_000);

export interface RetentionPreview {
  cutoff: Date;
  /** Captures that would be deleted, and their declared bytes. */
  count: number;
  bytes: number;
  /** Expired captures kept because they are on a post or attached elsewhere. */
  kept: number;
  /** The oldest of those to be deleted, at most {@link PREVIEW_ITEMS}. */
  items: { id: string; captured_at: Date; created_at: Date; bytes: number; status: string }[];
}

export async function previewRetention(
  db: Queryable,
  deviceId: string,
  days: number,
  now: Date,
): Promise<RetentionPreview> {
  const cutoff = retentionCutoff(days, now);
  const { rows: totals } = await db.query<{ count: number; bytes: string; kept: number }>(
    `SELECT count(*) FILTER (WHERE NOT ${PINNED})::int AS count,
            COALESCE(sum(m.bytes) FILTER (WHERE NOT ${PINNED}), 0)::text AS bytes,
            count(*) FILTER (WHERE ${PINNED})::int AS kept
       FROM media m WHERE ${EXPIRED}`,
    [deviceId, cutoff],
  );
  const { rows: items } = await db.query<RetentionPreview['items'][number] & { bytes: string }>(
    `SELECT m.id, m.captured_at, m.created_at, m.bytes::text AS bytes, m.status::text AS status
       FROM media m WHERE ${EXPIRED} AND NOT ${PINNED}
      ORDER BY m.captured_at, m.id LIMIT ${PREVIEW_ITEMS}`,
    [deviceId, cutoff],
  );
  const t = totals[0]!;
  return {
    cutoff,
    count: t.count,
    bytes: Number(t.bytes),
    kept: t.kept,
    items: items.map((r) => ({ ...r, bytes: Number(r.bytes) })),
  };
}

/** Devices with a retention set: (id, days). */
export async function devicesWithRetention(db: Queryable): Promise<{ id: string; days: number }[]> {
  const { rows } = await db.query<{ id: string; days: number }>(
    'SELECT id, retention_days AS days FROM devices WHERE retention_days IS NOT NULL ORDER BY id',
  );
  return rows;
}

/** Up to `limit` ids of a device's expired, unpinned captures, oldest first. */
export async function expiredCaptures(
  db: Queryable,
  deviceId: string,
  cutoff: Date,
  limit: number,
): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `SELECT m.id FROM media m WHERE ${EXPIRED} AND NOT ${PINNED}
      ORDER BY m.captured_at, m.id LIMIT $3`,
    [deviceId, cutoff, limit],
  );
  return rows.map((r) => r.id);
}

/**
 * Inside the deleting transaction: locks the capture and checks it again (a post attach locks the
 * media row too, so an attach in flight either committed first — pinned, kept — or waits and then
 * finds it DELETED). True when it may be deleted now.
 */
export async function lockExpiredCapture(
  tx: Queryable,
  mediaId: string,
  deviceId: string,
  cutoff: Date,
): Promise<boolean> {
  const locked = await tx.query(`SELECT 1 FROM media m WHERE m.id = $3 AND ${EXPIRED} FOR UPDATE`, [
    deviceId,
    cutoff,
    mediaId,
  ]);
  if (locked.rowCount !== 1) return false;
  // A new statement: sees an attach that committed while this one waited for the lock.
  const pinned = await tx.query<{ pinned: boolean }>(
    `SELECT ${PINNED} AS pinned FROM media m WHERE m.id = $1`,
    [mediaId],
  );
  return !pinned.rows[0]!.pinned;
}
