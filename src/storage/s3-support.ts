/**
 * S3 pieces the store uses: its options and client, error recognition and mapping, reading a
 * body, the bucket setup.
 */
import type { Readable } from 'node:stream';
import { CreateBucketCommand, HeadBucketCommand, PutBucketCorsCommand, S3Client } from '@aws-sdk/client-s3';
import { AppError } from '../errors.ts';
import type { ArchiveOptions } from './s3-archive.ts';
import { ObjectExistsError, ObjectTooLargeError, type Allocate } from './types.ts';

export interface S3StoreOptions {
  bucket: string;
  region: string;
  /** Unset for AWS itself; the URL of MinIO, Ceph RGW, R2 … otherwise. */
  endpoint: string | undefined;
  forcePathStyle: boolean;
  /** Whether the service verifies x-amz-checksum-sha256 (AWS does; Ceph 16 accepts and ignores it). */
  enforcesChecksum: boolean;
  /** `put` streams objects above this size as multipart uploads (PutObject alone caps at 5 GiB). */
  singlePutMaxBytes: number;
  partSize: number;
  /** TCP connect timeout per attempt (default 3 s). */
  connectTimeoutMs?: number | undefined;
  /** Idle socket timeout per attempt (default 20 s): bounds a hung store and a stalled stream. */
  socketTimeoutMs?: number | undefined;
  /** Whole-call deadline, attempts included, of calls without a request body (default 15 s). */
  operationTimeoutMs?: number | undefined;
  /** Attempts per call (default 3; the SDK's standard retry with backoff and a retry quota). */
  maxAttempts?: number | undefined;
  /** Tiered storage of originals (./s3-archive.ts): the lifecycle rule; undefined = none. */
  archive?: ArchiveOptions['archive'];
  /** How a restore is asked for (default 7 days, Standard tier). */
  restore?: ArchiveOptions['restore'] | undefined;
}

/** The SDK client for `opts`: bounded timeouts and retries, checksums only where we add them. */
export function createClient(opts: S3StoreOptions): S3Client {
  return new S3Client({
    region: opts.region,
    ...(opts.endpoint !== undefined ? { endpoint: opts.endpoint } : {}),
    forcePathStyle: opts.forcePathStyle,
    // The defaults add CRC32 trailers that break streamed PutObject (411) and put an
    // empty-body checksum into presigned URLs; checksums are added where we mean them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // An unavailable store must fail fast and bounded, not hang a request: a connect timeout,
    // an idle-socket timeout (a store that accepts connections but never answers), a few
    // attempts, and the store's `timed` deadlines around the calls that carry no body.
    maxAttempts: opts.maxAttempts ?? 3,
    requestHandler: {
      connectionTimeout: opts.connectTimeoutMs ?? 3000,
      socketTimeout: opts.socketTimeoutMs ?? 20_000,
    },
  });
}

/** Error names S3-compatible services use for "there is no such thing". */
const NOT_FOUND = new Set(['NoSuchKey', 'NotFound', 'NoSuchUpload', 'NoSuchBucket']);

export function awsError(err: unknown): { name: string; status: number | undefined } {
  const e = err as { name?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: number } };
  const name = typeof e.Code === 'string' ? e.Code : typeof e.name === 'string' ? e.name : '';
  return { name, status: e.$metadata?.httpStatusCode };
}

export const isNotFound = (err: unknown) => {
  const { name, status } = awsError(err);
  return NOT_FOUND.has(name) || status === 404;
};

/** A conditional write refused: `If-None-Match: *` found an object under the key. */
const isPreconditionFailed = (err: unknown) => {
  const { name, status } = awsError(err);
  return name === 'PreconditionFailed' || status === 412;
};

/** For a conditional write's rejection: `If-None-Match: *` refused → ObjectExistsError; else rethrown. */
export function existsAs(key: string, sha256: string): (err: unknown) => never {
  return (err) => {
    throw isPreconditionFailed(err) ? new ObjectExistsError(key, sha256) : err;
  };
}

export const uploadClosed = () => new AppError('invalid_state', 'The multipart upload is no longer open.');

/** CompleteMultipartUpload's refusals, as the client's errors (anything else unchanged). */
export function completionError(err: unknown): unknown {
  const { name } = awsError(err);
  if (name === 'InvalidPart')
    return new AppError('etag_mismatch', 'The store rejected a part: ETag mismatch.');
  if (name === 'InvalidPartOrder')
    return new AppError('invalid_part_number', 'Parts must be in ascending order.');
  if (name === 'EntityTooSmall')
    return new AppError('part_size_mismatch', 'A part other than the last is < 5 MiB.');
  if (isNotFound(err)) return uploadClosed();
  return err;
}

/**
 * A GetObject body in one buffer of the announced size (no chunk list, no concat), from
 * `allocate` when given; {@link ObjectTooLargeError} past `maxBytes` (or past the announced size).
 */
export async function readBody(
  body: Readable,
  size: number | undefined,
  maxBytes: number,
  allocate: Allocate = (size) => Buffer.allocUnsafe(size),
): Promise<Buffer> {
  if (size !== undefined && size > maxBytes) {
    body.destroy();
    throw new ObjectTooLargeError(size, maxBytes);
  }
  const limit = size ?? maxBytes;
  const bytes = allocate(limit);
  let filled = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (filled + chunk.length > limit) {
      body.destroy();
      throw new ObjectTooLargeError(filled + chunk.length, limit);
    }
    chunk.copy(bytes, filled);
    filled += chunk.length;
  }
  return bytes.subarray(0, filled);
}

/**
 * Creates the bucket (private) if missing and applies CORS for the web origins; returns what it
 * did, line by line. `timed` bounds each call like the store's other operations.
 */
export async function setupBucket(
  client: S3Client,
  bucket: string,
  corsOrigins: readonly string[],
  timed: <T>(call: (abortSignal: AbortSignal) => Promise<T>) => Promise<T>,
): Promise<string[]> {
  const done: string[] = [];
  try {
    await timed((abortSignal) => client.send(new HeadBucketCommand({ Bucket: bucket }), { abortSignal }));
    done.push(`bucket ${bucket} exists`);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await timed((abortSignal) => client.send(new CreateBucketCommand({ Bucket: bucket }), { abortSignal }));
    done.push(`bucket ${bucket} created (private)`);
  }
  // New buckets are private and we never set a public ACL or policy. No PublicAccessBlock on
  // purpose: Ceph 16 then refuses every presigned request (AccessDenied at "verifying op
  // permissions"), which would break direct uploads.
  if (corsOrigins.length > 0) {
    await timed((abortSignal) =>
      client.send(
        new PutBucketCorsCommand({
          Bucket: bucket,
          CORSConfiguration: {
            CORSRules: [
              {
                AllowedOrigins: [...corsOrigins],
                AllowedMethods: ['GET', 'HEAD', 'PUT'],
                AllowedHeaders: ['*'],
                // Browsers must read each part's ETag to complete a multipart upload.
                ExposeHeaders: ['ETag'],
                MaxAgeSeconds: 3600,
              },
            ],
          },
        }),
        { abortSignal },
      ),
    );
    done.push(`CORS applied for ${corsOrigins.join(', ')}`);
  }
  return done;
}
