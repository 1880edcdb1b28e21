import type { Readable } from 'node:stream';
import type { ArchiveOps } from './archive.ts';

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
  /**
   * Multipart parts go straight to the store with presigned URLs (`presignPart`); otherwise the
   * API receives them itself (`putPart`) behind URLs it signs.
   */
  presignedParts: boolean;
  /**
   * `signedGetUrl` points straight at the store (the bytes never pass through the API); otherwise
   * it points at the API's own signed `/storage` route.
   */
  presignedGet: boolean;
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
  /**
   * Only create: when an object is already under the key, nothing is written and the put fails
   * with {@link ObjectExistsError} (an uploaded original is never replaced once in place).
   */
  exclusive?: boolean;
}

export interface PutResult {
  size: number;
  sha256: string;
}

export interface SignedGetOptions {
  /** Lifetime of the URL, from `signedAt`. */
  expiresInSeconds: number;
  /**
   * Epoch seconds the URL is signed as of (default: now; never in the future). The same key,
   * options and `signedAt` give the same URL, which caches can reuse.
   */
  signedAt?: number | undefined;
  contentType: string;
  /** A complete Content-Disposition header value for the response. */
  contentDisposition: string;
  /**
   * Cache-Control of the response when the store serves it itself (presigned GET). Default
   * `private, no-cache`: a browser keeps the bytes but revalidates before each use. Stores do not
   * send `Vary: Origin`, so a response cached from an `<img>` (no CORS) would otherwise be reused,
   * without `Access-Control-Allow-Origin`, for a `fetch` of the same URL — which then fails.
   */
  cacheControl?: string | undefined;
}

export interface PresignedPut {
  method: 'PUT';
  url: string;
  headers: Record<string, string>;
}

/** Gives a buffer of at least `size` bytes for a read (see {@link ObjectStore.readAll}). */
export type Allocate = (size: number) => Buffer;

export interface ObjectStore {
  readonly backend: 'local' | 's3' | 'gcs';
  readonly capabilities: StoreCapabilities;
  /**
   * Streams `body` into `key`, hashing as it goes. The object becomes visible only when every
   * expectation holds; on any failure nothing is left behind.
   */
  put(key: string, body: Readable, expect: PutExpectation): Promise<PutResult>;
  /**
   * {@link put} for bytes already in memory (processing's variants), where the store has a
   * cheaper path than a stream; same checks, same atomicity and durability. Stores without one
   * leave it out and callers use `put`.
   */
  putBuffer?(key: string, data: Buffer, expect: PutExpectation): Promise<PutResult>;
  /** Streams the object (or one byte range of it). Undefined when the object does not exist. */
  get(key: string, range?: ByteRange): Promise<Readable | undefined>;
  /**
   * The whole object in one buffer (processing reads originals this way: far less CPU than a
   * stream of small chunks). Undefined when it does not exist; {@link ObjectTooLargeError} when
   * it holds more than `maxBytes`, before reading them. With `allocate`, the bytes go into the
   * buffer it returns (called once, with the object's size, or `maxBytes` when the size is not
   * known; it may return a larger buffer) and the result is a view of that buffer.
   */
  readAll(key: string, maxBytes: number, allocate?: Allocate): Promise<Buffer | undefined>;
  stat(key: string): Promise<ObjectStat | undefined>;
  /** Removes the object; removing a missing object is not an error. */
  delete(key: string): Promise<void>;
  /** A short-lived URL that serves the object with the given response headers. */
  signedGetUrl(key: string, opts: SignedGetOptions): Promise<string>;
  /** Only when `capabilities.presignedPut`. */
  presignPut?(key: string, expect: PutExpectation, expiresInSeconds: number): Promise<PresignedPut>;
  /** A pointer for operators: a local path or an s3:// / gs:// URI. */
  uri(key: string): string;

  // ---- stores whose objects are files on this host (local) --------------------------------
  /**
   * A directory on the store's own filesystem where a file can be built up (tus uploads append
   * to one) and then published by {@link adoptFile} without copying its bytes.
   */
  readonly stagingDir?: string;
  /**
   * Publishes a file under {@link stagingDir} as the object `key`, create-only (an object already
   * there: {@link ObjectExistsError}, with `sha256` as the refused bytes' hash), after fsync; the
   * staging file is gone afterwards. The caller has checked length and hash.
   */
  adoptFile?(key: string, file: string, sha256: string): Promise<void>;

  // ---- multipart: every backend speaks it, so clients have one protocol ----------------
  /** Starts a multipart upload for `key`; returns the store's upload id. */
  createMultipart(key: string, contentType: string): Promise<string>;
  /** Only when `capabilities.presignedParts`: a URL the client PUTs exactly `bytes` bytes to. */
  presignPart?(
    key: string,
    uploadId: string,
    partNumber: number,
    bytes: number,
    expiresInSeconds: number,
  ): Promise<PresignedPut>;
  /** Stores one part from a stream of exactly `bytes` bytes (replacing an earlier copy). */
  putPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Readable,
    bytes: number,
  ): Promise<StoredPart>;
  /** Parts stored so far, by part number; undefined when the upload does not exist (any more). */
  listParts(key: string, uploadId: string): Promise<StoredPart[] | undefined>;
  /**
   * Joins the parts (in the order given) into the object, atomically. `sha256` is set when the
   * store hashed the bytes while joining them.
   */
  completeMultipart(
    key: string,
    uploadId: string,
    parts: PartRef[],
  ): Promise<{ size: number; sha256?: string }>;
  /** Drops the upload and its parts; aborting a missing upload is not an error. */
  abortMultipart(key: string, uploadId: string): Promise<void>;
  /** Every unfinished multipart upload (for the sweeper). */
  listMultipartUploads(): AsyncIterable<PendingMultipart>;

  // ---- archive storage classes (S3): see ./archive.ts ----------------------------------
  /** Set by stores with classes that must be restored before a read; reads then may throw ObjectArchivedError. */
  readonly archive?: ArchiveOps;

  // ---- operations -----------------------------------------------------------------------
  /** Every stored object (for the sweeper and migrations), in pages. */
  listObjects(): AsyncIterable<ListedObject[]>;
  /** Creates what the store needs (bucket, CORS for web origins); safe to repeat. */
  setup(opts: { corsOrigins: readonly string[] }): Promise<string[]>;
}

export interface PartRef {
  partNumber: number;
  /** As the store returned it (quoted or not). */
  etag: string;
}

export interface StoredPart extends PartRef {
  size: number;
}

export interface PendingMultipart {
  key: string;
  uploadId: string;
  initiated: Date;
}

export interface ListedObject {
  key: string;
  size: number;
  lastModified: Date;
}

/** The object holds more bytes than the reader accepts. */
export class ObjectTooLargeError extends Error {
  override readonly name = 'ObjectTooLargeError';
  constructor(
    readonly size: number,
    readonly maxBytes: number,
  ) {
    super(`The object has ${size} bytes, more than the ${maxBytes} expected.`);
  }
}

/** An exclusive put found an object under its key; `sha256` is what the refused bytes hash to. */
export class ObjectExistsError extends Error {
  override readonly name = 'ObjectExistsError';
  constructor(
    readonly key: string,
    readonly sha256: string,
  ) {
    super(`An object is already stored under ${key}.`);
  }
}

/** ETags compare without quotes or a weak prefix (stores and clients differ in what they keep). */
export const normalizeEtag = (etag: string) => etag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');

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

/**
 * Stored bytes a route can serve as they are: validators, the headers they are served with, and
 * how to read them (whole or one byte range; undefined when the object has gone).
 */
export interface OpenableObject {
  contentType: string;
  contentDisposition: string;
  etag: string;
  size: number;
  lastModified: Date;
  open(range?: ByteRange): Promise<Readable | undefined>;
}
