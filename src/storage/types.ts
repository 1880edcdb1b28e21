import type { Readable } from 'node:stream';

/** What a backend can do by itself; callers branch on these flags, never on the backend's name. */
export interface StoreCapabilities {
  /** Clients can PUT bytes straight to the store with a presigned URL. */
  presignedPut: boolean;
  /** The store rejects a PUT whose length differs from the signed Content-Length. */
  enforcesLength: boolean;
  /** The store rejects a PUT whose Content-Type differs from the signed one. */
  enforcesContentType: boolean;
  /** The store verifies a declared SHA-256 on PUT. */
  enforcesChecksum: boolean;
}

export interface ObjectStat {
  size: number;
  /** A strong validator for the stored bytes (quoted). */
  etag: string;
  lastModified: Date;
}

export interface ByteRange {
  /** Inclusive. */
  start: number;
  /** Inclusive. */
  end: number;
}

export interface PutExpectation {
  contentType: string;
  /** Exact length the object must have; more → upload_too_large, fewer → upload_incomplete. */
  bytes: number;
  /** Lower-case hex SHA-256 the bytes must hash to. */
  sha256?: string | undefined;
}

export interface PutResult {
  size: number;
  sha256: string;
}

export interface SignedGetOptions {
  expiresInSeconds: number;
  contentType: string;
  /** A complete Content-Disposition header value for the response. */
  contentDisposition: string;
}

export interface PresignedPut {
  method: 'PUT';
  url: string;
  headers: Record<string, string>;
}

export interface ObjectStore {
  readonly backend: 'local' | 's3' | 'gcs';
  readonly capabilities: StoreCapabilities;
  /**
   * Streams `body` into `key`, hashing as it goes. The object becomes visible only when every
   * expectation holds; on any failure nothing is left behind.
   */
  put(key: string, body: Readable, expect: PutExpectation): Promise<PutResult>;
  /** Streams the object (or one byte range of it). Undefined when the object does not exist. */
  get(key: string, range?: ByteRange): Promise<Readable | undefined>;
  stat(key: string): Promise<ObjectStat | undefined>;
  /** Removes the object; removing a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** A short-lived URL that serves the object with the given response headers. */
  signedGetUrl(key: string, opts: SignedGetOptions): Promise<string>;
  /** Only when `capabilities.presignedPut`. */
  presignPut?(key: string, expect: PutExpectation, expiresInSeconds: number): Promise<PresignedPut>;
  /** A pointer for operators: a local path or an s3:// / gs:// URI. */
  uri(key: string): string;
}

/** Keys are built by us from sanitised parts; this is the last line of defence against traversal. */
export function assertSafeKey(key: string): void {
  if (
    key.length === 0 ||
    key.length > 1024 ||
    key.startsWith('/') ||
    key.split('/').some((seg) => seg === '' || seg === '.' || seg === '..') ||
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f\\]/.test(key)
  ) {
    throw new Error(`unsafe storage key: ${JSON.stringify(key)}`);
  }
}
