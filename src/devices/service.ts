/**
 * Devices that their owners manage: list (with last-seen time and usage), create, rename, hand over
 * to another user, revoke, rotate the key with an overlap window, and claim a new device by a short
 * code it shows (the device-authorization pattern of RFC 8628), so that no key is ever typed.
 *
 * Who may do what: a device's owner (a user) manages it; the device itself may read its own record
 * and rotate its own key; nobody else learns it exists (404). Devices created without an owner (by
 * the admin CLI) are managed by the CLI only.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { setAuditContext } from '../audit/context.ts';
import { createDevice, hashApiKey, newApiKey, type Principal } from '../auth/principals.ts';
import type { Config } from '../config.ts';
import { withTransaction, type Pool } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import * as repo from './repo.ts';
import type { DeviceRow } from './repo.ts';

export type DeviceSettings = Config['devices'];

/** How often a device should poll for its claimed key (RFC 8628's `interval`). */
export const CLAIM_POLL_SECONDS = 5;
/** RFC 8628 §6.1: consonants only (no vowels, so no words), upper case, easy to read out and type. */
const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
const USER_CODE_LENGTH = 8;
const DEVICE_CODE_PREFIX = 'mdc_';

/** `WDJBMJHT` → `WDJB-MJHT`. */
const formatUserCode = (code: string) => `${code.slice(0, 4)}-${code.slice(4)}`;

/** What a person typed (any case, spaces or dashes) → the stored form, or undefined if it cannot be one. */
export function normalizeUserCode(typed: string): string | undefined {
  const code = typed.toUpperCase().replace(/[\s-]/g, '');
  if (code.length !== USER_CODE_LENGTH) return undefined;
  for (const ch of code) if (!USER_CODE_ALPHABET.includes(ch)) return undefined;
  return code;
}

const hashDeviceCode = (code: string) => createHash('sha256').update(code).digest('hex');

export type ClaimPoll =
  | { status: 'pending'; intervalSeconds: number; expiresAt: Date }
  | { status: 'claimed'; deviceId: string; name: string; ownerUserId: string; apiKey: string };

export class DeviceService {
  constructor(
    private readonly pool: Pool,
    private readonly settings: DeviceSettings,
    private readonly logger: Logger,
  ) {}

  /** The caller's devices (a user's), oldest first. */
  list(principal: Principal, includeRevoked: boolean): Promise<DeviceRow[]> {
    return repo.devicesOf(this.pool, userOf(principal), includeRevoked);
  }

  /** One device, for its owner or the device itself (`me`); 404 to anyone else. */
  async get(principal: Principal, id: string): Promise<DeviceRow> {
    return this.visible(principal, id === 'me' ? selfOf(principal) : id);
  }

  async create(principal: Principal, name: string): Promise<{ device: DeviceRow; apiKey: string }> {
    const ownerUserId = userOf(principal);
    const { device, apiKey } = await withTransaction(this.pool, async (tx) => {
      await setAuditContext(tx, principal);
      return createDevice(tx, { name, ownerUserId });
    });
    this.logger.info({ deviceId: device.id, ownerUserId }, 'device created');
    return { device: (await repo.deviceById(this.pool, device.id))!, apiKey };
  }

  /** Rename and/or hand over (`ownerUserId`): the owner only; revoked devices cannot change. */
  async update(
    principal: Principal,
    id: string,
    change: { name?: string | undefined; ownerUserId?: string | undefined },
  ): Promise<DeviceRow> {
    await this.owned(principal, id);
    const updated = await withTransaction(this.pool, async (tx) => {
      await setAuditContext(tx, principal);
      return repo.updateDevice(tx, id, change);
    });
    if (!updated) {
      throw new AppError('invalid_state', 'A revoked device cannot be renamed or handed over.');
    }
    if (change.ownerUserId !== undefined) {
      this.logger.info(
        { deviceId: id, from: userOf(principal), to: change.ownerUserId },
        'device handed over',
      );
    }
    return (await repo.deviceById(this.pool, id))!;
  }

  /** Revokes the device's keys at once on every server (idempotent): the owner only. */
  async revoke(principal: Principal, id: string): Promise<DeviceRow> {
    const device = await this.owned(principal, id);
    if (!device.revoked_at) {
      await withTransaction(this.pool, async (tx) => {
        await setAuditContext(tx, principal);
        await tx.query('UPDATE devices SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL', [id]);
      });
      this.logger.info({ deviceId: id }, 'device revoked');
    }
    return (await repo.deviceById(this.pool, id))!;
  }

  /**
   * A new key for the device (shown once). The key it replaces keeps working for `overlapSeconds`
   * (default `keyOverlapSeconds`), so a camera in the field finishes its uploads and picks up the
   * new key; 0 ends the old key at once. The owner or the device itself (`me`) may rotate.
   */
  async rotateKey(
    principal: Principal,
    id: string,
    overlapSeconds: number | undefined,
  ): Promise<{ device: DeviceRow; apiKey: string }> {
    const deviceId = id === 'me' ? selfOf(principal) : id;
    const device = await this.visible(principal, deviceId);
    if (device.revoked_at) throw new AppError('invalid_state', 'A revoked device has no key to rotate.');
    const apiKey = newApiKey();
    const overlap = overlapSeconds ?? this.settings.keyOverlapSeconds;
    const rotated = await withTransaction(this.pool, async (tx) => {
      await setAuditContext(tx, principal);
      return repo.rotateKey(tx, deviceId, hashApiKey(apiKey), overlap);
    });
    if (!rotated) {
      throw new AppError('invalid_state', 'A revoked device has no key to rotate.');
    }
    this.logger.info({ deviceId, overlapSeconds: overlap, by: principal.kind }, 'device key rotated');
    return { device: (await repo.deviceById(this.pool, deviceId))!, apiKey };
  }

  /** A device asks to be claimed: a secret it polls with and a short code it shows its owner. */
  async startClaim(name: string): Promise<{ deviceCode: string; userCode: string; expiresAt: Date }> {
    const deviceCode = DEVICE_CODE_PREFIX + randomBytes(32).toString('base64url');
    for (let attempt = 0; ; attempt++) {
      let code = '';
      for (let i = 0; i < USER_CODE_LENGTH; i++)
        code += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
      try {
        const expiresAt = await repo.insertClaim(this.pool, {
          deviceCodeHash: hashDeviceCode(deviceCode),
          userCode: code,
          name,
          ttlSeconds: this.settings.claimTtlSeconds,
        });
        return { deviceCode, userCode: formatUserCode(code), expiresAt };
      } catch (err) {
        // 20^8 codes: a collision with a live claim is rare; draw again.
        if ((err as { code?: string }).code !== '23505' || attempt >= 5) throw err;
      }
    }
  }

  /** The owner types the code the device shows: the device becomes theirs (its key is fetched by the device). */
  async claim(principal: Principal, typedCode: string, name: string | undefined): Promise<DeviceRow> {
    const ownerUserId = userOf(principal);
    const code = normalizeUserCode(typedCode);
    const notFound = () =>
      new AppError(
        'not_found',
        'No device is waiting with this code (it may have expired): start again on the device.',
      );
    if (!code) throw notFound();
    const deviceId = await withTransaction(this.pool, async (tx) => {
      await setAuditContext(tx, principal);
      const claim = await repo.openClaimForUpdate(tx, code);
      if (!claim) throw notFound();
      // Created with a key nobody holds; the device gets its real key when it polls.
      const { device } = await createDevice(tx, { name: name ?? claim.name, ownerUserId });
      await repo.markClaimed(tx, code, device.id);
      return device.id;
    });
    this.logger.info({ deviceId, ownerUserId }, 'device claimed');
    return (await repo.deviceById(this.pool, deviceId))!;
  }

  /** The device polls with its secret: pending until claimed, then its key, once. */
  async pollClaim(deviceCode: string): Promise<ClaimPoll> {
    const hash = hashDeviceCode(deviceCode);
    return withTransaction(this.pool, async (tx) => {
      const claim = await repo.claimByDeviceCodeForUpdate(tx, hash);
      if (!claim) throw new AppError('not_found', 'No claim has this device code.');
      if (claim.delivered_at) {
        throw new AppError('claim_expired', 'This claim was completed already; its key was delivered once.');
      }
      if (!claim.device_id) {
        if (claim.expired) {
          throw new AppError('claim_expired', 'Nobody entered the code in time; start a new claim.');
        }
        return { status: 'pending', intervalSeconds: CLAIM_POLL_SECONDS, expiresAt: claim.expires_at };
      }
      const device = await repo.deviceById(tx, claim.device_id);
      if (!device || device.revoked_at || !device.owner_user_id) {
        throw new AppError('claim_expired', 'The claimed device was revoked before it fetched its key.');
      }
      const apiKey = newApiKey();
      // The device fetches its first real key: the device itself acts.
      await setAuditContext(tx, { kind: 'device', deviceId: device.id, ownerUserId: device.owner_user_id });
      await repo.rotateKey(tx, device.id, hashApiKey(apiKey), 0);
      await repo.markDelivered(tx, hash);
      return {
        status: 'claimed',
        deviceId: device.id,
        name: device.name,
        ownerUserId: device.owner_user_id,
        apiKey,
      };
    });
  }

  /** A device the caller may see: its owner, or the device itself. */
  private async visible(principal: Principal, id: string): Promise<DeviceRow> {
    const device = await repo.deviceById(this.pool, id);
    const mine =
      device &&
      (principal.kind === 'user' ? device.owner_user_id === principal.userId : principal.deviceId === id);
    if (!mine) throw new AppError('not_found', 'Device not found.');
    return device;
  }

  /** A device the caller owns (users only); 404 otherwise, a device included. */
  private async owned(principal: Principal, id: string): Promise<DeviceRow> {
    const device = await repo.deviceById(this.pool, id);
    if (!device || principal.kind !== 'user' || device.owner_user_id !== principal.userId) {
      throw new AppError('not_found', 'Device not found.');
    }
    return device;
  }
}

function userOf(p: Principal): string {
  if (p.kind !== 'user') throw new AppError('forbidden', 'Devices are managed by their owner (a user).');
  return p.userId;
}

function selfOf(p: Principal): string {
  if (p.kind !== 'device') throw new AppError('not_found', 'Only a device has a `me` device.');
  return p.deviceId;
}
