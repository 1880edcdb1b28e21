import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * HMAC-SHA256 signatures for URLs this API serves itself (the local store's uploads and
 * downloads), so the client flow is identical to a cloud store's presigned URLs. A signature
 * covers the method, the resource, the expiry and every response parameter, so it cannot be
 * reused for another key, another method or other headers.
 */
export class UrlSigner {
  constructor(private readonly secret: string) {}

  sign(method: string, resource: string, expiresAt: number, params: Record<string, string> = {}): string {
    const canonical = [
      method.toUpperCase(),
      resource,
      String(expiresAt),
      ...Object.keys(params)
        .sort()
        .map((k) => `${k}=${params[k]}`),
    ].join('\n');
    return createHmac('sha256', this.secret).update(canonical).digest('base64url');
  }

  /** 'ok', or why the signature does not hold. */
  verify(
    method: string,
    resource: string,
    expiresAt: number,
    signature: string,
    params: Record<string, string> = {},
    now = Date.now(),
  ): 'ok' | 'invalid' | 'expired' {
    const expected = Buffer.from(this.sign(method, resource, expiresAt, params));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
    if (!Number.isFinite(expiresAt) || expiresAt * 1000 < now) return 'expired';
    return 'ok';
  }
}
