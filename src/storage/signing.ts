import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.ts';
import { AppError } from '../errors.ts';

/**
 * The four resources this API signs itself, and what each signature covers. Signing and verifying
 * live here only: the local upload URL and the part URL (stores without presigned PUTs), the local
 * store's object GET, and the HLS playback token.
 */
export interface ResourceClaims {
  /** `PUT /media/{id}/upload`. */
  upload: { mediaId: string };
  /** `PUT /media/{id}/parts/{n}`: one part of one store upload (its id travels in the URL). */
  part: { mediaId: string; partNumber: number; uploadId: string };
  /** `GET /storage/{key}` with the response headers it is served with. */
  storage: { key: string; contentType: string; contentDisposition: string };
  /** Everything under one HLS run (`hls/<mediaId>/<runId>/`). */
  hls: { mediaId: string; runId: string };
  /** An event-stream token (`?token=` of `GET /events`): its payload names the principal. */
  stream: { payload: string };
}
export type SignedResource = keyof ResourceClaims;

/** What travels in the URL's query for each resource. */
export interface SignedParams {
  upload: { expires: string; sig: string };
  part: { expires: string; upload: string; sig: string };
  storage: { expires: string; ct: string; cd: string; sig: string };
  /** `<expires>.<runId>.<signature>`. */
  hls: { token: string };
  stream: { expires: string; sig: string };
}

/** What a route knows from the URL's path, before it reads the query. */
export interface PathClaims {
  upload: { mediaId: string };
  part: { mediaId: string; partNumber: number };
  storage: { key: string };
  hls: { mediaId: string };
  stream: { payload: string };
}

export interface Verified<R extends SignedResource> {
  claims: ResourceClaims[R];
  /** Unix seconds. */
  expiresAt: number;
}

const TOKEN = /^(\d{1,12})\.([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{1,128})$/;
const EXPIRES = /^\d{1,12}$/;

/**
 * What each signature is computed over: method, resource, expiry and the parameters that travel
 * with it. Each resource has its own method + resource namespace, so a signature for one never
 * holds for another. (The strings are those of the signers this module replaced, so URLs handed
 * out before an upgrade keep working.)
 */
const canonical = {
  upload: (c: ResourceClaims['upload']) => ({
    method: 'PUT',
    resource: `media/${c.mediaId}/upload`,
    params: {},
  }),
  part: (c: ResourceClaims['part']) => ({
    method: 'PUT',
    resource: `media/${c.mediaId}/parts/${c.partNumber}`,
    params: { upload: c.uploadId },
  }),
  storage: (c: ResourceClaims['storage']) => ({
    method: 'GET',
    resource: `storage/${c.key}`,
    params: { ct: c.contentType, cd: c.contentDisposition },
  }),
  hls: (c: ResourceClaims['hls']) => ({
    method: 'GET',
    resource: `hls-token:${c.mediaId}:hls/${c.mediaId}/${c.runId}`,
    params: {},
  }),
  stream: (c: ResourceClaims['stream']) => ({
    method: 'GET',
    resource: `events-token:${c.payload}`,
    params: {},
  }),
} satisfies {
  [R in SignedResource]: (c: ResourceClaims[R]) => {
    method: string;
    resource: string;
    params: Record<string, string>;
  };
};

/**
 * HMAC-SHA256 signatures for what this API serves itself, so the client flow is identical to a
 * cloud store's presigned URLs. A signature covers the method, the resource, the expiry and every
 * parameter that travels with it, so it cannot be reused for another key, another resource or
 * other response headers. Verification needs only the URL (no row is read for a forged one).
 */
export class UrlSigner {
  constructor(private readonly secret: string) {}

  /** The query parameters that authorise `claims` until `expiresAt` (Unix seconds). */
  sign<R extends SignedResource>(resource: R, claims: ResourceClaims[R], expiresAt: number): SignedParams[R] {
    const sig = this.mac(resource, claims, expiresAt);
    const expires = String(expiresAt);
    const params: { [K in SignedResource]: (c: ResourceClaims[K]) => SignedParams[K] } = {
      upload: () => ({ expires, sig }),
      part: (c) => ({ expires, upload: c.uploadId, sig }),
      storage: (c) => ({ expires, ct: c.contentType, cd: c.contentDisposition, sig }),
      hls: (c) => ({ token: `${expires}.${c.runId}.${sig}` }),
      stream: () => ({ expires, sig }),
    };
    return (params[resource] as (c: ResourceClaims[R]) => SignedParams[R])(claims);
  }

  /**
   * The claims of a signed URL: the path's, completed from the query. Throws 403
   * `signature_invalid` (tampered, forged, malformed, another resource's) or `signature_expired`.
   */
  verify<R extends SignedResource>(
    resource: R,
    path: PathClaims[R],
    query: Partial<SignedParams[R]>,
    now = Date.now(),
    messages: { invalid?: string; expired?: string } = {},
  ): Verified<R> {
    const parsed = this.parse(resource, path, query);
    if (parsed === null) throw new AppError('signature_invalid', messages.invalid);
    const { claims, expiresAt, sig } = parsed;
    const expected = Buffer.from(this.mac(resource, claims, expiresAt));
    const given = Buffer.from(sig);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new AppError('signature_invalid', messages.invalid);
    }
    if (expiresAt * 1000 < now) throw new AppError('signature_expired', messages.expired);
    return { claims, expiresAt };
  }

  private parse<R extends SignedResource>(
    resource: R,
    path: PathClaims[R],
    query: Partial<SignedParams[R]>,
  ): { claims: ResourceClaims[R]; expiresAt: number; sig: string } | null {
    const q = query as Partial<Record<string, string>>;
    if (resource === 'hls') {
      const m = TOKEN.exec(q.token ?? '');
      if (!m) return null;
      const claims = { mediaId: (path as PathClaims['hls']).mediaId, runId: m[2]! };
      return { claims: claims as ResourceClaims[R], expiresAt: Number(m[1]), sig: m[3]! };
    }
    const { expires, sig } = q;
    if (expires === undefined || !EXPIRES.test(expires) || sig === undefined) return null;
    let claims: ResourceClaims[SignedResource];
    if (resource === 'part') {
      if (q.upload === undefined) return null;
      claims = { ...(path as PathClaims['part']), uploadId: q.upload };
    } else if (resource === 'storage') {
      if (q.ct === undefined || q.cd === undefined) return null;
      claims = { key: (path as PathClaims['storage']).key, contentType: q.ct, contentDisposition: q.cd };
    } else if (resource === 'stream') {
      claims = { payload: (path as PathClaims['stream']).payload };
    } else {
      claims = { mediaId: (path as PathClaims['upload']).mediaId };
    }
    return { claims: claims as ResourceClaims[R], expiresAt: Number(expires), sig };
  }

  private mac<R extends SignedResource>(resource: R, claims: ResourceClaims[R], expiresAt: number): string {
    const {
      method,
      resource: name,
      params,
    } = (
      canonical[resource] as (c: ResourceClaims[R]) => {
        method: string;
        resource: string;
        params: Record<string, string>;
      }
    )(claims);
    const text = [
      method,
      name,
      String(expiresAt),
      ...Object.keys(params)
        .sort()
        .map((k) => `${k}=${params[k]}`),
    ].join('\n');
    return createHmac('sha256', this.secret).update(text).digest('base64url');
  }
}

/** The HMAC secret for self-signed URLs: from config, else generated once under the data dir. */
export async function signingSecret(config: Config): Promise<string> {
  if (config.signingSecret) return config.signingSecret;
  const file = path.join(config.dataDir, 'signing.secret');
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  await mkdir(config.dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  await writeFile(file, secret + '\n', { mode: 0o600, flag: 'wx' }).catch(
    async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    },
  );
  return (await readFile(file, 'utf8')).trim();
}
