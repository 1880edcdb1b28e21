/**
 * Who may stream which events, and the short-lived stream token for browsers' EventSource (which
 * cannot send an Authorization header). The token names the principal, not its credential, and
 * expires after EVENTS_TOKEN_TTL_SECONDS; a device's token stops working once the device is
 * revoked. It is only accepted by the stream routes.
 */
import type { Principal } from '../auth/principals.ts';
import type { Queryable } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import type { UrlSigner } from '../storage/signing.ts';
import { activeDeviceOwner, type EventScope } from './repo.ts';

const TOKEN_RESOURCE = 'events-token:';

interface TokenBody {
  /** 'd' device id, 'u' user id */
  k: 'd' | 'u';
  i: string;
}

export class StreamAccess {
  constructor(
    private readonly db: Queryable,
    private readonly signer: UrlSigner,
    private readonly ttlSeconds: number,
  ) {}

  mintToken(p: Principal, now = Date.now()): { token: string; expiresAt: string } {
    const body: TokenBody = p.kind === 'device' ? { k: 'd', i: p.deviceId } : { k: 'u', i: p.userId };
    const exp = Math.floor(now / 1000) + this.ttlSeconds;
    const payload = Buffer.from(JSON.stringify({ ...body, e: exp })).toString('base64url');
    const sig = this.signer.sign('GET', TOKEN_RESOURCE + payload, exp);
    return { token: `${payload}.${sig}`, expiresAt: new Date(exp * 1000).toISOString() };
  }

  /** The principal a stream token stands for; 403 when tampered with or expired, 401 if revoked. */
  async principalOf(token: string): Promise<Principal> {
    const [payload, sig, extra] = token.split('.');
    if (!payload || !sig || extra !== undefined) throw new AppError('signature_invalid');
    let body: TokenBody & { e: number };
    try {
      body = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenBody & { e: number };
    } catch {
      throw new AppError('signature_invalid');
    }
    const verdict = this.signer.verify('GET', TOKEN_RESOURCE + payload, Number(body.e), sig);
    if (verdict === 'invalid') throw new AppError('signature_invalid');
    if (verdict === 'expired') throw new AppError('signature_expired');
    if (body.k === 'u') return { kind: 'user', userId: body.i };
    const device = await activeDeviceOwner(this.db, body.i);
    if (!device) throw new AppError('unauthorized', 'The device of this stream token has been revoked.');
    return { kind: 'device', deviceId: body.i, ownerUserId: device.ownerUserId };
  }

  /** The events of all media (and posts) the principal may see. */
  static scopeOf(p: Principal): EventScope {
    return p.kind === 'device'
      ? { kind: 'device', deviceId: p.deviceId }
      : { kind: 'user', userId: p.userId };
  }

  /** A device may keep streaming while it is not revoked; a user while their token held at connect. */
  async stillActive(p: Principal): Promise<boolean> {
    return p.kind === 'user' || (await activeDeviceOwner(this.db, p.deviceId)) !== undefined;
  }
}
