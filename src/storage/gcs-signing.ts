/**
 * Credentials and V4 signed URLs for the GCS store. One function signs every URL the store hands
 * out (`signGcsUrl`); the conformance test runs Google's signing cases through it.
 *
 * Signing key: a service-account key file (GCS_KEY_FILE / GOOGLE_APPLICATION_CREDENTIALS) signs
 * locally. Without one (Cloud Run), the client library signs through the IAM Credentials
 * `signBlob` API of the service account, with the runtime's own access token: no key exists
 * anywhere. Nothing is cached beyond the library's access token, so a revoked permission takes
 * effect at the next call (IAM checks `signBlob` and every bucket request when they happen).
 */
import { readFileSync } from 'node:fs';
import { GoogleAuth, JWT, type AuthClient, type CredentialBody } from 'google-auth-library';
import type { Storage } from '@google-cloud/storage';

/** What Cloud Storage needs (read/write objects, manage the bucket) and signBlob (iam). */
export const GCS_SCOPES = [
  'https://www.googleapis.com/auth/devstorage.full_control',
  'https://www.googleapis.com/auth/iam',
];

export interface GcsAuthOptions {
  /** A service-account JSON key: signs locally. */
  keyFile?: string | undefined;
  /**
   * The service account whose signBlob signs URLs when there is no key (default: the one the
   * metadata server names, i.e. the Cloud Run service's runtime account).
   */
  serviceAccountEmail?: string | undefined;
  projectId?: string | undefined;
  /**
   * Another Cloud Storage endpoint (GCS_API_ENDPOINT). With a key file, access tokens are then
   * JWTs the key signs itself (no token endpoint needed); against Google's endpoint they come
   * from the usual OAuth token exchange.
   */
  apiEndpoint?: string | undefined;
}

type CredentialCallback = (err: Error | null, credentials?: CredentialBody) => void;

/**
 * Application Default Credentials whose signing identity is a fixed service account: `sign`
 * finds no local key and calls signBlob for this email (google-auth-library's own path).
 */
export class SignBlobAuth extends GoogleAuth<AuthClient> {
  constructor(
    private readonly email: string,
    opts: ConstructorParameters<typeof GoogleAuth<AuthClient>>[0] = {},
  ) {
    super(opts);
  }

  override getCredentials(): Promise<CredentialBody>;
  override getCredentials(callback: CredentialCallback): void;
  override getCredentials(callback?: CredentialCallback): Promise<CredentialBody> | void {
    const creds: CredentialBody = { client_email: this.email };
    if (callback) {
      callback(null, creds);
      return;
    }
    return Promise.resolve(creds);
  }
}

/** The credentials the store uses for its requests and its signatures. */
export function createGcsAuth(opts: GcsAuthOptions): GoogleAuth<AuthClient> {
  const base = { scopes: GCS_SCOPES, ...(opts.projectId ? { projectId: opts.projectId } : {}) };
  if (opts.keyFile !== undefined) {
    const json = JSON.parse(readFileSync(opts.keyFile, 'utf8')) as Record<string, string>;
    const auth = new GoogleAuth<AuthClient>({ ...base, credentials: json });
    if (opts.apiEndpoint === undefined) return auth;
    const client = auth.fromJSON(json);
    if (client instanceof JWT) client.useJWTAccessWithScope = true;
    auth.cachedCredential = client;
    return auth;
  }
  return opts.serviceAccountEmail !== undefined
    ? new SignBlobAuth(opts.serviceAccountEmail, base)
    : new GoogleAuth(base);
}

export interface GcsSignRequest {
  method: 'GET' | 'PUT';
  bucket: string;
  key: string;
  expiresInSeconds: number;
  /** Signed headers the client must send exactly (names in any case; Content-Type included). */
  headers?: Record<string, string> | undefined;
  /** Signed query parameters (response-content-type, partNumber, uploadId …). */
  queryParams?: Record<string, string> | undefined;
  /** Signing time (default now). */
  now?: Date | undefined;
  /** IAM Credentials base URL for signBlob (default Google's). */
  signingEndpoint?: string | undefined;
}

/** A V4 (GOOG4-RSA-SHA256) signed URL, path style, on the client's API endpoint. */
export async function signGcsUrl(storage: Storage, req: GcsSignRequest): Promise<string> {
  const now = req.now ?? new Date();
  const [url] = await storage
    .bucket(req.bucket)
    .file(req.key)
    .getSignedUrl({
      version: 'v4',
      action: req.method === 'GET' ? 'read' : 'write',
      accessibleAt: now,
      expires: now.getTime() + req.expiresInSeconds * 1000,
      extensionHeaders: req.headers ?? {},
      queryParams: req.queryParams ?? {},
      ...(req.signingEndpoint !== undefined ? { signingEndpoint: req.signingEndpoint } : {}),
    });
  return canonicalOrder(url);
}

/**
 * The query in canonical (signing) order, X-Goog-Signature last: the form Google's own examples
 * and conformance cases give (the library appends extra parameters after its own). The raw
 * `name=value` pieces are only reordered, never re-encoded.
 */
function canonicalOrder(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const pieces = url.slice(q + 1).split('&');
  const name = (p: string) => p.split('=')[0]!;
  const signature = pieces.filter((p) => name(p) === 'X-Goog-Signature');
  const rest = pieces.filter((p) => name(p) !== 'X-Goog-Signature');
  rest.sort((a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0));
  return `${url.slice(0, q)}?${[...rest, ...signature].join('&')}`;
}
