/**
 * Read-only summaries the web app's device and admin pages show: a device's cameras with their
 * latest capture, and the processing queue as one user sees it. Only the caller's own: anything
 * else answers `not_found`, exactly like a missing id.
 */
import type { Principal } from '../auth/principals.ts';
import type { Queryable } from '../db/pool.ts';
import { AppError } from '../errors.ts';

export interface CameraSummary {
  cameraId: string;
  /** Capture time of the camera's newest media (not deleted). */
  latestCaptureAt: string;
  mediaCount: number;
}

function userOf(principal: Principal): string {
  if (principal.kind !== 'user') throw new AppError('not_found', 'Not found.');
  return principal.userId;
}

/** The cameras of a device the caller owns, with media of the caller, newest capture first. */
export async function camerasOf(
  db: Queryable,
  principal: Principal,
  deviceId: string,
): Promise<CameraSummary[]> {
  const owner = userOf(principal);
  const own = await db.query('SELECT 1 FROM devices WHERE id = $1 AND owner_user_id = $2', [deviceId, owner]);
  if (own.rowCount !== 1) throw new AppError('not_found', 'Device not found.');
  const { rows } = await db.query<{ camera_id: string; latest: Date; n: number }>(
    `SELECT camera_id, max(captured_at) AS latest, count(*)::int AS n
       FROM media
      WHERE device_id = $1 AND owner_user_id = $2 AND status <> 'DELETED' AND camera_id IS NOT NULL
      GROUP BY camera_id
      ORDER BY latest DESC, camera_id`,
    [deviceId, owner],
  );
  return rows.map((r) => ({
    cameraId: r.camera_id,
    latestCaptureAt: r.latest.toISOString(),
    mediaCount: r.n,
  }));
}

/** The processing queue as one user sees it: their media waiting, being processed, failed. */
export interface QueueCounts {
  waiting: number;
  active: number;
  failed: number;
  /** FAILED after every retry (`processing_failed`): the job went to the dead-letter queue. */
  deadLettered: number;
}

export async function queueCounts(db: Queryable, principal: Principal, userId: string): Promise<QueueCounts> {
  const owner = userOf(principal);
  if (userId !== 'me' && userId !== owner) throw new AppError('not_found', 'User not found.');
  const { rows } = await db.query<{ waiting: number; active: number; failed: number; dead: number }>(
    `SELECT count(*) FILTER (WHERE status = 'UPLOADED')::int AS waiting,
            count(*) FILTER (WHERE status = 'PROCESSING')::int AS active,
            count(*) FILTER (WHERE status = 'FAILED' AND uploaded_at IS NOT NULL)::int AS failed,
            count(*) FILTER (WHERE status = 'FAILED' AND error->>'code' = 'processing_failed')::int AS dead
       FROM media WHERE owner_user_id = $1 AND status IN ('UPLOADED', 'PROCESSING', 'FAILED')`,
    [owner],
  );
  const r = rows[0]!;
  return { waiting: r.waiting, active: r.active, failed: r.failed, deadLettered: r.dead };
}
