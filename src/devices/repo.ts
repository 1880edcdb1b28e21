/**
 * SQL of the device-management use cases: devices as their owners see them (with last-seen time and
 * usage), key rotation with an overlap window, and claim codes (migration 0026).
 */
import type { Queryable } from '../db/pool.ts';

export interface DeviceRow {
  id: string;
  name: string;
  owner_user_id: string | null;
  created_at: Date;
  revoked_at: Date | null;
  last_seen_at: Date | null;
  key_rotated_at: Date | null;
  previous_key_expires_at: Date | null;
  stored_bytes: string | null;
  open_sessions: number | null;
  retention_days: number | null;
}

const SELECT_DEVICE = `
  SELECT d.id, d.name, d.owner_user_id, d.created_at, d.revoked_at, d.last_seen_at, d.key_rotated_at,
         d.retention_days,
         CASE WHEN d.previous_key_expires_at > now() THEN d.previous_key_expires_at END AS previous_key_expires_at,
         u.stored_bytes, u.open_sessions
    FROM devices d LEFT JOIN principal_usage u ON u.principal = 'device:' || d.id`;

export async function deviceById(db: Queryable, id: string): Promise<DeviceRow | undefined> {
  const { rows } = await db.query<DeviceRow>(`${SELECT_DEVICE} WHERE d.id = $1`, [id]);
  return rows[0];
}

export async function devicesOf(
  db: Queryable,
  userId: string,
  includeRevoked: boolean,
): Promise<DeviceRow[]> {
  const { rows } = await db.query<DeviceRow>(
    `${SELECT_DEVICE} WHERE d.owner_user_id = $1 AND ($2 OR d.revoked_at IS NULL) ORDER BY d.created_at, d.id`,
    [userId, includeRevoked],
  );
  return rows;
}

/** Renames and/or hands a device to another user; undefined fields stay. Revoked devices stay as they are. */
export async function updateDevice(
  db: Queryable,
  id: string,
  change: { name?: string | undefined; ownerUserId?: string | undefined },
): Promise<boolean> {
  const res = await db.query(
    `UPDATE devices SET name = COALESCE($2, name), owner_user_id = COALESCE($3, owner_user_id)
      WHERE id = $1 AND revoked_at IS NULL`,
    [id, change.name ?? null, change.ownerUserId ?? null],
  );
  return res.rowCount === 1;
}

/** Sets (days) or clears (null) the device's capture retention (migration 0031); revoked devices too. */
export async function setRetention(db: Queryable, id: string, days: number | null): Promise<void> {
  await db.query('UPDATE devices SET retention_days = $2 WHERE id = $1', [id, days]);
}

/**
 * Makes `newKeyHash` the device's key. The key it replaces stays valid until `overlapSeconds` from
 * now (0: at once); a key kept from an earlier rotation ends now. False if the device is revoked.
 */
export async function rotateKey(
  db: Queryable,
  id: string,
  newKeyHash: string,
  overlapSeconds: number,
): Promise<boolean> {
  const res = await db.query(
    `UPDATE devices
        SET previous_key_hash = CASE WHEN $3 > 0 THEN key_hash END,
            previous_key_expires_at = CASE WHEN $3 > 0 THEN now() + make_interval(secs => $3) END,
            key_hash = $2,
            key_rotated_at = now()
      WHERE id = $1 AND revoked_at IS NULL`,
    [id, newKeyHash, overlapSeconds],
  );
  return res.rowCount === 1;
}

export interface ClaimRow {
  user_code: string;
  name: string;
  expires_at: Date;
  device_id: string | null;
  delivered_at: Date | null;
}

export async function insertClaim(
  db: Queryable,
  claim: { deviceCodeHash: string; userCode: string; name: string; ttlSeconds: number },
): Promise<Date> {
  // Claims that ended long ago go as new ones come (the index makes this a short range scan).
  await db.query(`DELETE FROM device_claims WHERE expires_at < now() - interval '1 day'`);
  const { rows } = await db.query<{ expires_at: Date }>(
    `INSERT INTO device_claims (device_code_hash, user_code, name, expires_at)
     VALUES ($1, $2, $3, now() + make_interval(secs => $4)) RETURNING expires_at`,
    [claim.deviceCodeHash, claim.userCode, claim.name, claim.ttlSeconds],
  );
  return rows[0]!.expires_at;
}

/** The open (unexpired, unclaimed) claim with this user code, locked for the claiming transaction. */
export async function openClaimForUpdate(db: Queryable, userCode: string): Promise<ClaimRow | undefined> {
  const { rows } = await db.query<ClaimRow>(
    `SELECT user_code, name, expires_at, device_id, delivered_at FROM device_claims
      WHERE user_code = $1 AND expires_at > now() AND device_id IS NULL FOR UPDATE`,
    [userCode],
  );
  return rows[0];
}

export async function markClaimed(db: Queryable, userCode: string, deviceId: string): Promise<void> {
  await db.query(`UPDATE device_claims SET device_id = $2, claimed_at = now() WHERE user_code = $1`, [
    userCode,
    deviceId,
  ]);
}

/** The claim a device polls with, locked (delivery happens once). */
export async function claimByDeviceCodeForUpdate(
  db: Queryable,
  deviceCodeHash: string,
): Promise<(ClaimRow & { expired: boolean }) | undefined> {
  const { rows } = await db.query<ClaimRow & { expired: boolean }>(
    `SELECT user_code, name, expires_at, device_id, delivered_at, expires_at <= now() AS expired
       FROM device_claims WHERE device_code_hash = $1 FOR UPDATE`,
    [deviceCodeHash],
  );
  return rows[0];
}

export async function markDelivered(db: Queryable, deviceCodeHash: string): Promise<void> {
  await db.query(`UPDATE device_claims SET delivered_at = now() WHERE device_code_hash = $1`, [
    deviceCodeHash,
  ]);
}
