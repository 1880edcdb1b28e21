/** Who may see and change a media: the rules every media use case applies. */
import type { Principal } from '../auth/principals.ts';
import type { Pool } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { owningUser } from './privacy.ts';
import * as repo from './repo.ts';
import type { MediaRow } from './repo.ts';

/**
 * The principal may see and manage this media: a device what it uploaded itself (not what a user
 * uploaded naming it), a user what belongs to them (see {@link owningUser}: a camera that changes
 * hands does not take its earlier captures along).
 */
export function canAccess(
  p: Principal,
  m: Pick<MediaRow, 'device_id' | 'owner_user_id' | 'device_owner_user_id' | 'uploaded_by'>,
): boolean {
  if (p.kind === 'device') return m.uploaded_by === 'device' && m.device_id === p.deviceId;
  return owningUser(m) === p.userId;
}

/**
 * A session request repeats `existing` only if the same principal, in the same ownership, made
 * it: the read rule ({@link canAccess}) plus, for a device, the owner it had then. A camera that
 * changed hands must not complete (or learn about) a session its previous owner opened.
 */
export function isReplayOf(p: Principal, existing: MediaRow): boolean {
  if (!canAccess(p, existing)) return false;
  return p.kind === 'user' || owningUser(existing) === p.ownerUserId;
}

/**
 * A media its device uploaded itself accepts no more bytes, and is not completed, once that device
 * is revoked (or deleted): signed URLs handed out before the revocation stop working. (A session a
 * user made naming the device is the user's, and stays open.)
 */
export async function assertDeviceActive(
  db: Pool,
  media: Pick<MediaRow, 'device_id' | 'uploaded_by' | 'device_active'>,
): Promise<void> {
  if (media.uploaded_by !== 'device' || media.device_id === null) return;
  // Read with the row when it came from the full SELECT (PUT and complete: one statement fewer).
  const active = media.device_active ?? (await repo.deviceActive(db, media.device_id));
  if (!active) throw new AppError('device_revoked');
}

/**
 * Resolves a device scope (`me` for a device key's own) the principal may read: the device itself,
 * or its owner. Anything else is 404.
 */
export async function assertDeviceScope(db: Pool, principal: Principal, deviceId: string): Promise<void> {
  const dev = await repo.deviceOwner(db, deviceId);
  const allowed =
    dev !== undefined &&
    (principal.kind === 'device' ? principal.deviceId === deviceId : dev.ownerUserId === principal.userId);
  if (!allowed) throw new AppError('not_found', 'Device not found.');
}
