/** SQL of profile images (migration 0030_profiles.sql). One function per statement. */
import type { Queryable } from '../db/pool.ts';
import type { MediaStatus } from '../media/repo.ts';

export interface ProfileRow {
  user_id: string;
  media_id: string | null;
  pending_media_id: string | null;
  version: number;
  updated_at: Date;
}

/** The row with the statuses of both images (null where there is none). */
export interface ProfileState extends ProfileRow {
  media_status: MediaStatus | null;
  pending_status: MediaStatus | null;
}

/** The media columns a swap decides on, locked. */
export interface ProfileCandidate {
  id: string;
  owner_user_id: string | null;
  device_owner_user_id: string | null;
  purpose: string;
  status: MediaStatus;
}

/** The user's row, created empty if missing, locked until the commit (every change takes it first). */
export async function lockOrCreate(tx: Queryable, userId: string): Promise<ProfileRow> {
  await tx.query('INSERT INTO profile_images (user_id) VALUES ($1) ON CONFLICT DO NOTHING', [userId]);
  const { rows } = await tx.query<ProfileRow>('SELECT * FROM profile_images WHERE user_id = $1 FOR UPDATE', [
    userId,
  ]);
  return rows[0]!;
}

export async function lockProfile(tx: Queryable, userId: string): Promise<ProfileRow | undefined> {
  const { rows } = await tx.query<ProfileRow>('SELECT * FROM profile_images WHERE user_id = $1 FOR UPDATE', [
    userId,
  ]);
  return rows[0];
}

/** Locked after the profile row (always in that order: no deadlock between two swaps). */
export async function lockMedia(tx: Queryable, mediaId: string): Promise<ProfileCandidate | undefined> {
  const { rows } = await tx.query<ProfileCandidate>(
    `SELECT m.id, m.owner_user_id, d.owner_user_id AS device_owner_user_id, m.purpose, m.status
       FROM media m LEFT JOIN devices d ON d.id = m.device_id
      WHERE m.id = $1 FOR UPDATE OF m`,
    [mediaId],
  );
  return rows[0];
}

export async function setImages(
  tx: Queryable,
  userId: string,
  next: { mediaId: string | null; pendingId: string | null; swapped: boolean },
): Promise<void> {
  await tx.query(
    `UPDATE profile_images SET media_id = $2, pending_media_id = $3,
            version = version + CASE WHEN $4 THEN 1 ELSE 0 END, updated_at = now()
      WHERE user_id = $1`,
    [userId, next.mediaId, next.pendingId, next.swapped],
  );
}

export async function findState(db: Queryable, userId: string): Promise<ProfileState | undefined> {
  const { rows } = await db.query<ProfileState>(
    `SELECT p.*, cur.status AS media_status, pen.status AS pending_status
       FROM profile_images p
       LEFT JOIN media cur ON cur.id = p.media_id
       LEFT JOIN media pen ON pen.id = p.pending_media_id
      WHERE p.user_id = $1`,
    [userId],
  );
  return rows[0];
}

/** Users whose waiting image has reached a final state (a swap or a drop is due). */
export async function unsettledUsers(db: Queryable, limit: number): Promise<string[]> {
  const { rows } = await db.query<{ user_id: string }>(
    `SELECT p.user_id FROM profile_images p JOIN media m ON m.id = p.pending_media_id
      WHERE m.status IN ('READY', 'FAILED', 'DELETED') LIMIT $1`,
    [limit],
  );
  return rows.map((r) => r.user_id);
}
