import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, SignJWT, type JWTVerifyGetKey } from 'jose';
import type { Config } from '../config.ts';
import type { Queryable } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import type { LastSeenWriter } from './last-seen.ts';

export type DevicePrincipal = { kind: 'device'; deviceId: string; ownerUserId: string | null };
export type Principal = DevicePrincipal | { kind: 'user'; userId: string };

const DEVICE_KEY_PREFIX = 'mdk_';

/** Device keys carry 256 random bits, so a fast hash is enough (no password stretching needed). */
export const hashApiKey = (key: string) => createHash('sha256').update(key).digest('hex');

export interface Device {
  id: string;
  name: string;
  ownerUserId: string | null;
  createdAt: string;
}

/** A new device API key (256 random bits); only its hash is stored. */
export const newApiKey = () => DEVICE_KEY_PREFIX + randomBytes(32).toString('base64url');

export async function createDevice(
  db: Queryable,
  input: { name: string; ownerUserId?: string | undefined },
): Promise<{ device: Device; apiKey: string }> {
  const apiKey = newApiKey();
  const { rows } = await db.query<{
    id: string;
    name: string;
    owner_user_id: string | null;
    created_at: Date;
  }>(
    `INSERT INTO devices (id, name, owner_user_id, key_hash) VALUES ($1, $2, $3, $4)
     RETURNING id, name, owner_user_id, created_at`,
    [randomUUID(), input.name, input.ownerUserId ?? null, hashApiKey(apiKey)],
  );
  const r = rows[0]!;
  return {
    device: { id: r.id, name: r.name, ownerUserId: r.owner_user_id, createdAt: r.created_at.toISOString() },
    apiKey,
  };
}

export async function listDevices(db: Queryable): Promise<Device[]> {
  const { rows } = await db.query<{
    id: string;
    name: string;
    owner_user_id: string | null;
    created_at: Date;
  }>('SELECT id, name, owner_user_id, created_at FROM devices WHERE revoked_at IS NULL ORDER BY created_at');
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    ownerUserId: r.owner_user_id,
    createdAt: r.created_at.toISOString(),
  }));
}

export async function revokeDevice(db: Queryable, id: string): Promise<boolean> {
  const res = await db.query('UPDATE devices SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [
    id,
  ]);
  return res.rowCount === 1;
}

/** Bound on cached device keys; past it the oldest entries go first (Map keeps insertion order). */
const DEVICE_CACHE_MAX = 10_000;

/**
 * The channel on which the database announces a changed device: its id (migration 0005's row
 * trigger), or {@link ALL_DEVICES} after a TRUNCATE (0006).
 */
export const DEVICE_CHANGED_CHANNEL = 'mediary_devices';
export const ALL_DEVICES = '*';

/**
 * Turns an `Authorization` header into a principal: a device API key or a user's JWT.
 *
 * Resolved device keys are cached for `auth.deviceKeyCacheSeconds` (keyed by the key's hash;
 * unknown or revoked keys are never cached), which saves one database round trip per device
 * request. The cache is only used while `cacheUsable()` says changes reach us: the database
 * announces every revocation, owner change or deletion of a device (a trigger NOTIFYs
 * {@link DEVICE_CHANGED_CHANNEL}), the server forwards it to {@link forgetDevice}, and clears the
 * whole cache whenever its LISTEN connection was interrupted. So a revocation takes effect at
 * once on every server; the time limit is only a backstop.
 */
/**
 * The identity provider's key set cannot be fetched (unreachable, timed out, a non-200 answer, not
 * a key set): the token may well be valid, so the caller is told to retry (503), not to log in
 * again (401). A key set that was fetched but has no key for the token stays a 401.
 */
export function isJwksUnavailable(err: unknown): boolean {
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JWKSInvalid) return true;
  // jose's own fetch failures are plain JOSEErrors (ERR_JOSE_GENERIC); every other JOSE error is
  // about the token (no matching key, unsupported algorithm …).
  if (err instanceof joseErrors.JOSEError) return err.code === 'ERR_JOSE_GENERIC';
  // fetch's network errors (TypeError "fetch failed": refused, reset, DNS) and aborts.
  return true;
}

function unavailableAs503(getKey: JWTVerifyGetKey): JWTVerifyGetKey {
  return async (header, token) => {
    try {
      return await getKey(header, token);
    } catch (err) {
      if (!isJwksUnavailable(err)) throw err;
      throw new AppError(
        'service_unavailable',
        "The identity provider's key set (JWT_JWKS_URL) is not reachable; retry shortly.",
        undefined,
        { 'retry-after': '5' },
      );
    }
  };
}

export class Authenticator {
  private readonly jwtKey: Uint8Array | JWTVerifyGetKey | undefined;
  private readonly deviceCache = new Map<string, { principal: DevicePrincipal; until: number }>();
  /**
   * Bumped by every forget: a lookup that was in flight while a change was announced may have
   * read the old row, so its result is used but not cached.
   */
  private forgets = 0;

  constructor(
    private readonly db: Queryable,
    private readonly auth: Config['auth'],
    /** Where a device's request is noted (its `last_seen_at`, written behind the request). */
    private readonly lastSeen: Pick<LastSeenWriter, 'seen'>,
    private readonly cacheUsable: () => boolean = () => false,
  ) {
    if (auth.jwksUrl) this.jwtKey = unavailableAs503(createRemoteJWKSet(new URL(auth.jwksUrl)));
    else if (auth.jwtSecret) this.jwtKey = new TextEncoder().encode(auth.jwtSecret);
  }

  /** Drops the cached keys of one device (it was revoked, deleted or changed owner). */
  forgetDevice(deviceId: string): void {
    this.forgets++;
    for (const [hash, entry] of this.deviceCache) {
      if (entry.principal.deviceId === deviceId) this.deviceCache.delete(hash);
    }
  }

  /** A {@link DEVICE_CHANGED_CHANNEL} payload: one device id, or every device. */
  deviceChanged(payload: string): void {
    if (payload === ALL_DEVICES) this.forgetAll();
    else this.forgetDevice(payload);
  }

  /** Drops every cached key (changes may have been missed). */
  forgetAll(): void {
    this.forgets++;
    this.deviceCache.clear();
  }

  async authenticate(header: string | undefined): Promise<Principal> {
    if (!header)
      throw new AppError('unauthorized', 'Missing Authorization header (expected "Bearer <token>").');
    const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!match) throw new AppError('unauthorized', 'Authorization must be "Bearer <token>".');
    const token = match[1]!;
    return token.startsWith(DEVICE_KEY_PREFIX) ? this.device(token) : this.user(token);
  }

  private async device(key: string): Promise<Principal> {
    const principal = await this.deviceByKey(key);
    this.lastSeen.seen(principal.deviceId);
    return principal;
  }

  /**
   * The device a key belongs to: its current key, or the key a rotation replaced while its overlap
   * window lasts (a cached previous key is kept no longer than that window).
   */
  private async deviceByKey(key: string): Promise<DevicePrincipal> {
    const hash = hashApiKey(key);
    const ttlMs = this.cacheUsable() ? this.auth.deviceKeyCacheSeconds * 1000 : 0;
    const now = Date.now();
    const hit = ttlMs > 0 ? this.deviceCache.get(hash) : undefined;
    if (hit && hit.until > now) return hit.principal;
    if (hit) this.deviceCache.delete(hash);
    const forgets = this.forgets;
    const { rows } = await this.db.query<{
      id: string;
      owner_user_id: string | null;
      previous_ms_left: number | null;
    }>(
      `SELECT id, owner_user_id,
              CASE WHEN key_hash = $1 THEN NULL
                   ELSE extract(epoch FROM previous_key_expires_at - now()) * 1000 END AS previous_ms_left
         FROM devices
        WHERE (key_hash = $1 OR (previous_key_hash = $1 AND previous_key_expires_at > now()))
          AND revoked_at IS NULL`,
      [hash],
    );
    const row = rows[0];
    if (!row) throw new AppError('unauthorized', 'Unknown or revoked device key.');
    const principal: DevicePrincipal = { kind: 'device', deviceId: row.id, ownerUserId: row.owner_user_id };
    const keepMs = row.previous_ms_left === null ? ttlMs : Math.min(ttlMs, Number(row.previous_ms_left));
    if (keepMs > 0 && forgets === this.forgets) {
      if (this.deviceCache.size >= DEVICE_CACHE_MAX) {
        for (const [k, v] of this.deviceCache) {
          if (v.until <= now || this.deviceCache.size >= DEVICE_CACHE_MAX) this.deviceCache.delete(k);
          else break;
        }
      }
      this.deviceCache.set(hash, { principal, until: now + keepMs });
    }
    return principal;
  }

  private async user(token: string): Promise<Principal> {
    if (!this.jwtKey) throw new AppError('unauthorized', 'User tokens are not enabled on this server.');
    const options = {
      algorithms: this.auth.jwksUrl ? ['RS256', 'ES256', 'EdDSA', 'PS256'] : ['HS256'],
      issuer: this.auth.issuer,
      audience: this.auth.audience,
      // A token without an expiry would be valid forever.
      requiredClaims: ['exp'],
    };
    try {
      const { payload } =
        typeof this.jwtKey === 'function'
          ? await jwtVerify(token, this.jwtKey, options)
          : await jwtVerify(token, this.jwtKey, options);
      if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 200) {
        throw new AppError('unauthorized', 'The token has no usable "sub" claim.');
      }
      return { kind: 'user', userId: payload.sub };
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw new AppError('unauthorized', 'The token is invalid or expired.');
    }
  }
}

/**
 * Mints an HS256 user token (admin CLI and tests); production issuers are usually external.
 * `issuer` / `audience` become `iss` / `aud`: a server with JWT_ISSUER / JWT_AUDIENCE set refuses
 * tokens without them.
 */
export async function mintUserToken(
  secret: string,
  userId: string,
  ttlSeconds = 3600,
  claims: { issuer?: string | undefined; audience?: string | undefined } = {},
): Promise<string> {
  let jwt = new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(userId)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSeconds);
  if (claims.issuer !== undefined) jwt = jwt.setIssuer(claims.issuer);
  if (claims.audience !== undefined) jwt = jwt.setAudience(claims.audience);
  return jwt.sign(new TextEncoder().encode(secret));
}
