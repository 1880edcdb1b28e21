/**
 * A user's own devices, as the web app manages them: list (with each camera's latest capture and
 * when the device was last seen), create (the key is shown once), revoke. Only devices whose
 * `owner_user_id` is the user; anyone else's answer `not_found`, exactly like a missing id.
 */
import type { Queryable } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { createDevice, type Device, type Principal } from './principals.ts';

export interface CameraSummary {
  cameraId: string;
  /** Capture time of the camera's newest media (not deleted). */
  latestCaptureAt: string;
  mediaCount: number;
}

export interface OwnedDevice extends Device {
  /** When the device last opened an upload session; null if it never did. */
  lastSeenAt: string | null;
  cameras: CameraSummary[];
}

function ownerOf(principal: Principal): string {
  if (principal.kind !== 'user') throw new AppError('not_found', 'Devices are managed by their owner.');
  return principal.userId;
}

export async function listOwnedDevices(db: Queryable, principal: Principal): Promise<OwnedDevice[]> {
  const owner = ownerOf(principal);
  const { rows } = await db.query<{
    id: string;
    name: string;
    owner_user_id: string;
    created_at: Date;
    last_seen: Date | null;
    cameras: { cameraId: string; latestCaptureAt: string; mediaCount: number }[] | null;
  }>(
    `SELECT d.id, d.name, d.owner_user_id, d.created_at,
            (SELECT max(m.created_at) FROM media m WHERE m.device_id = d.id) AS last_seen,
            (SELECT json_agg(json_build_object('cameraId', c.camera_id, 'latestCaptureAt', c.latest,
                                               'mediaCount', c.n) ORDER BY c.latest DESC)
               FROM (SELECT m.camera_id, max(m.captured_at) AS latest, count(*)::int AS n
                       FROM media m
                      WHERE m.device_id = d.id AND m.owner_user_id = d.owner_user_id
                        AND m.status <> 'DELETED' AND m.camera_id IS NOT NULL
                      GROUP BY m.camera_id) c) AS cameras
       FROM devices d
      WHERE d.owner_user_id = $1 AND d.revoked_at IS NULL
      ORDER BY d.created_at, d.id`,
    [owner],
  );
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    ownerUserId: r.owner_user_id,
    createdAt: r.created_at.toISOString(),
    lastSeenAt: r.last_seen?.toISOString() ?? null,
    cameras: (r.cameras ?? []).map((c) => ({
      ...c,
      latestCaptureAt: new Date(c.latestCaptureAt).toISOString(),
    })),
  }));
}

export async function createOwnedDevice(
  db: Queryable,
  principal: Principal,
  name: string,
): Promise<{ device: Device; apiKey: string }> {
  return createDevice(db, { name, ownerUserId: ownerOf(principal) });
}

export async function revokeOwnedDevice(db: Queryable, principal: Principal, id: string): Promise<void> {
  const res = await db.query(
    'UPDATE devices SET revoked_at = now() WHERE id = $1 AND owner_user_id = $2 AND revoked_at IS NULL',
    [id, ownerOf(principal)],
  );
  if (res.rowCount !== 1) throw new AppError('not_found', 'Device not found.');
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
  const owner = ownerOf(principal);
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
