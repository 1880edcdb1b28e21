import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListPartsCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ObjectArchivedError, type ArchiveOps } from './archive.ts';
import { StoreUnavailableError } from './errors.ts';
import { planParts, readVerified, streamIntoParts } from './parts.ts';
import { applyArchiveRule, s3ArchiveOps } from './s3-archive.ts';
import {
  awsError,
  completionError,
  createClient,
  isNotFound,
  existsAs,
  readBody,
  setupBucket,
  uploadClosed,
  type S3StoreOptions,
} from './s3-support.ts';
import {
  assertSafeKey,
  ObjectExistsError,
  type Allocate,
  type ByteRange,
  type ListedObject,
  type ObjectStat,
  type ObjectStore,
  type PartRef,
  type PendingMultipart,
  type PresignedPut,
  type PutExpectation,
  type PutResult,
  type SignedGetOptions,
  type StoredPart,
} from './types.ts';

/** Hex SHA-256 → the base64 form S3 headers use. */
const hexToBase64 = (hex: string) => Buffer.from(hex, 'hex').toString('base64');

/** Signed GET URLs kept for reuse (see S3ObjectStore.signedGetUrl): a few MB at most. */
const SIGNED_URL_CACHE_SIZE = 20_000;

/**
 * Any S3-compatible service through AWS SDK v3. Credentials come from the SDK's default chain
 * (environment, shared config, instance/task roles). Clients upload and download with presigned
 * URLs; the bucket stays private.
 */
export class S3ObjectStore implements ObjectStore {
  readonly backend = 's3' as const;
  readonly capabilities;
  readonly client: S3Client;
  private readonly bucket: string;

  constructor(private readonly opts: S3StoreOptions) {
    this.bucket = opts.bucket;
    this.capabilities = {
      presignedPut: true,
      enforcesLength: true,
      enforcesContentType: true,
      enforcesChecksum: opts.enforcesChecksum,
      presignedParts: true,
      presignedGet: true,
    };
    this.client = createClient(opts);
    this.operationTimeoutMs = opts.operationTimeoutMs ?? 15_000;
    this.archive = s3ArchiveOps(
      this.client,
      this.bucket,
      { archive: opts.archive, restore: opts.restore ?? { days: 7, tier: 'Standard' } },
      (call) => this.timed(call),
    );
  }

  readonly archive: ArchiveOps;

  private readonly operationTimeoutMs: number;

  /**
   * Runs one bodiless store call under a deadline covering all its attempts, until the response
   * headers (a streamed GET body is then bounded by the idle-socket timeout only). Past it the
   * call is aborted and fails as StoreUnavailableError (→ 503).
   */
  private async timed<T>(call: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.operationTimeoutMs);
    try {
      return await call(ctl.signal);
    } catch (err) {
      if (ctl.signal.aborted)
        throw new StoreUnavailableError(
          `the object store did not answer within ${this.operationTimeoutMs} ms`,
          { cause: err },
        );
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  // ---- objects --------------------------------------------------------------------------

  async put(key: string, body: Readable, expect: PutExpectation): Promise<PutResult> {
    assertSafeKey(key);
    if (expect.bytes > this.opts.singlePutMaxBytes) return this.putMultipart(key, body, expect);
    // Small objects: buffer (bounded by singlePutMaxBytes), check, then one PutObject with
    // Content-MD5, so nothing is written unless every expectation holds.
    const { data, size, sha256 } = await readVerified(body, expect);
    await this.client
      .send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: data,
          ContentLength: size,
          ContentType: expect.contentType,
          ContentMD5: createHash('md5').update(data).digest('base64'),
          ...(expect.exclusive ? { IfNoneMatch: '*' } : {}),
        }),
      )
      .catch(existsAs(key, sha256));
    return { size, sha256 };
  }

  /** Large objects: one part buffered at a time, hashed as they pass; aborted unless all checks hold. */
  private async putMultipart(key: string, body: Readable, expect: PutExpectation): Promise<PutResult> {
    const plan = planParts(expect.bytes, this.opts.partSize);
    const uploadId = await this.createMultipart(key, expect.contentType);
    try {
      const { parts, size, sha256 } = await streamIntoParts(body, plan, expect, async (n, data) => {
        const res = await this.client.send(
          new UploadPartCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: n,
            Body: data,
            ContentLength: data.length,
            ContentMD5: createHash('md5').update(data).digest('base64'),
          }),
        );
        return res.ETag ?? '';
      });
      // If-None-Match on CompleteMultipartUpload is atomic where the store honours it (AWS since
      // 2024); Ceph ignores it, so an exclusive put also looks just before joining.
      if (expect.exclusive && (await this.stat(key))) throw new ObjectExistsError(key, sha256);
      await this.completeMultipart(key, uploadId, parts, { exclusive: expect.exclusive }).catch(
        existsAs(key, sha256),
      );
      return { size, sha256 };
    } catch (err) {
      await this.abortMultipart(key, uploadId).catch(() => undefined);
      throw err;
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable | undefined> {
    return (await this.getObject(key, range))?.body;
  }

  /** GetObject: the body and its length. Undefined when the object does not exist. */
  private async getObject(
    key: string,
    range?: ByteRange,
  ): Promise<{ body: Readable; size: number | undefined } | undefined> {
    assertSafeKey(key);
    try {
      const res = await this.timed((abortSignal) =>
        this.client.send(
          new GetObjectCommand({
            Bucket: this.bucket,
            Key: key,
            ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}),
          }),
          { abortSignal },
        ),
      );
      const body = res.Body as Readable | undefined;
      return body ? { body, size: res.ContentLength } : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      // GLACIER / DEEP_ARCHIVE (or an archive tier) not restored: 403 InvalidObjectState.
      if (awsError(err).name === 'InvalidObjectState') throw new ObjectArchivedError(key, { cause: err });
      throw err;
    }
  }

  async readAll(key: string, maxBytes: number, allocate?: Allocate): Promise<Buffer | undefined> {
    // As `get`: the request is bounded by the operation timeout, the body by the caller's own
    // (a processing job's time limit).
    const found = await this.getObject(key);
    if (!found) return undefined;
    return readBody(found.body, found.size, maxBytes, allocate);
  }

  async stat(key: string): Promise<ObjectStat | undefined> {
    assertSafeKey(key);
    try {
      const res = await this.timed((abortSignal) =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal }),
      );
      return {
        size: res.ContentLength ?? 0,
        etag: res.ETag ?? '""',
        lastModified: res.LastModified ?? new Date(0),
      };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    assertSafeKey(key);
    await this.timed((abortSignal) =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }), { abortSignal }),
    );
  }

  /**
   * URLs signed as of a given `signedAt` are the same every time: kept, so that records, listings
   * and playlists asked for again within a signing window cost no signing (the SDK's presigner
   * runs its whole middleware stack per URL). Bounded; the oldest entries go first.
   */
  private readonly signedUrls = new Map<string, Promise<string>>();

  signedGetUrl(key: string, opts: SignedGetOptions): Promise<string> {
    assertSafeKey(key);
    if (opts.signedAt === undefined) return this.presignGet(key, opts);
    const id = [
      key,
      opts.signedAt,
      opts.expiresInSeconds,
      opts.contentType,
      opts.contentDisposition,
      opts.cacheControl,
    ].join('\n');
    const known = this.signedUrls.get(id);
    if (known) return known;
    const url = this.presignGet(key, opts);
    url.catch(() => this.signedUrls.delete(id));
    this.signedUrls.set(id, url);
    if (this.signedUrls.size > SIGNED_URL_CACHE_SIZE) {
      this.signedUrls.delete(this.signedUrls.keys().next().value!);
    }
    return url;
  }

  private presignGet(key: string, opts: SignedGetOptions): Promise<string> {
    return getSignedUrl(
      this.client,
      new GetObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ResponseContentType: opts.contentType,
        ResponseContentDisposition: opts.contentDisposition,
        ResponseCacheControl: opts.cacheControl ?? 'private, no-cache',
      }),
      {
        expiresIn: opts.expiresInSeconds,
        ...(opts.signedAt !== undefined ? { signingDate: new Date(opts.signedAt * 1000) } : {}),
      },
    );
  }

  /**
   * Content-Length and Content-Type are signed, so the store rejects another length or type;
   * a declared SHA-256 is signed too when the store verifies it (kept as a header, not hoisted
   * into the query, so the client must send it); so is `If-None-Match: *` for an exclusive put.
   */
  async presignPut(key: string, expect: PutExpectation, expiresInSeconds: number): Promise<PresignedPut> {
    assertSafeKey(key);
    const checksum =
      this.capabilities.enforcesChecksum && expect.sha256 !== undefined
        ? hexToBase64(expect.sha256)
        : undefined;
    const url = await getSignedUrl(
      this.client,
      new PutObjectCommand({
        Bucket: this.bucket,
        Key: key,
        ContentType: expect.contentType,
        ContentLength: expect.bytes,
        ...(checksum !== undefined ? { ChecksumSHA256: checksum } : {}),
        ...(expect.exclusive ? { IfNoneMatch: '*' } : {}),
      }),
      {
        expiresIn: expiresInSeconds,
        signableHeaders: new Set(['content-type', 'content-length', 'if-none-match']),
        unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
      },
    );
    const headers: Record<string, string> = { 'Content-Type': expect.contentType };
    if (checksum !== undefined) headers['x-amz-checksum-sha256'] = checksum;
    // Signed: the store refuses (412) a PUT that would replace an object already in place.
    if (expect.exclusive) headers['If-None-Match'] = '*';
    return { method: 'PUT', url, headers };
  }

  uri(key: string): string {
    assertSafeKey(key);
    return `s3://${this.bucket}/${key}`;
  }

  // ---- multipart ------------------------------------------------------------------------

  async createMultipart(key: string, contentType: string): Promise<string> {
    assertSafeKey(key);
    const res = await this.timed((abortSignal) =>
      this.client.send(
        new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: contentType }),
        { abortSignal },
      ),
    );
    if (!res.UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
    return res.UploadId;
  }

  async presignPart(
    key: string,
    uploadId: string,
    partNumber: number,
    bytes: number,
    expiresInSeconds: number,
  ): Promise<PresignedPut> {
    assertSafeKey(key);
    const url = await getSignedUrl(
      this.client,
      new UploadPartCommand({
        Bucket: this.bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: partNumber,
        ContentLength: bytes,
      }),
      { expiresIn: expiresInSeconds, signableHeaders: new Set(['content-length']) },
    );
    return { method: 'PUT', url, headers: {} };
  }

  async putPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: Readable,
    bytes: number,
  ): Promise<StoredPart> {
    assertSafeKey(key);
    try {
      const res = await this.client.send(
        new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: partNumber,
          Body: body,
          ContentLength: bytes,
        }),
      );
      return { partNumber, etag: res.ETag ?? '', size: bytes };
    } catch (err) {
      if (isNotFound(err)) throw uploadClosed();
      throw err;
    }
  }

  async listParts(key: string, uploadId: string): Promise<StoredPart[] | undefined> {
    assertSafeKey(key);
    const parts = new Map<number, StoredPart>();
    let marker: string | undefined;
    try {
      // Paginated by hand: Ceph 16 can answer IsTruncated=true on the last page, and the SDK's
      // paginator then loops forever. Stop when the marker stops advancing.
      for (;;) {
        const page = await this.timed((abortSignal) =>
          this.client.send(
            new ListPartsCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: uploadId,
              ...(marker !== undefined ? { PartNumberMarker: marker } : {}),
            }),
            { abortSignal },
          ),
        );
        for (const p of page.Parts ?? []) {
          const n = p.PartNumber ?? 0;
          parts.set(n, { partNumber: n, etag: p.ETag ?? '', size: p.Size ?? 0 });
        }
        const next = page.NextPartNumberMarker;
        if (!page.IsTruncated || next === undefined || next === marker || Number(next) <= Number(marker ?? 0))
          break;
        marker = next;
      }
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    return [...parts.values()].sort((a, b) => a.partNumber - b.partNumber);
  }

  async completeMultipart(
    key: string,
    uploadId: string,
    parts: PartRef[],
    opts: { exclusive?: boolean | undefined } = {},
  ): Promise<{ size: number }> {
    assertSafeKey(key);
    try {
      await this.timed((abortSignal) =>
        this.client.send(
          new CompleteMultipartUploadCommand({
            Bucket: this.bucket,
            Key: key,
            UploadId: uploadId,
            MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
            ...(opts.exclusive ? { IfNoneMatch: '*' } : {}),
          }),
          { abortSignal },
        ),
      );
    } catch (err) {
      throw completionError(err);
    }
    // Ceph answers CompleteMultipartUpload with an empty ETag: ask for the object itself.
    const stat = await this.stat(key);
    if (!stat) throw new Error(`object ${key} missing right after CompleteMultipartUpload`);
    return { size: stat.size };
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    assertSafeKey(key);
    try {
      await this.timed((abortSignal) =>
        this.client.send(
          new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }),
          { abortSignal },
        ),
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async *listMultipartUploads(): AsyncIterable<PendingMultipart> {
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const res = await this.timed((abortSignal) =>
        this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.bucket,
            ...(keyMarker !== undefined ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker !== undefined ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
          { abortSignal },
        ),
      );
      for (const u of res.Uploads ?? []) {
        if (u.Key && u.UploadId)
          yield { key: u.Key, uploadId: u.UploadId, initiated: u.Initiated ?? new Date(0) };
      }
      // Guard against a truncated flag whose markers do not advance (as ListParts on Ceph 16).
      if (!res.IsTruncated || (res.NextKeyMarker === keyMarker && res.NextUploadIdMarker === uploadIdMarker))
        return;
      keyMarker = res.NextKeyMarker;
      uploadIdMarker = res.NextUploadIdMarker;
    }
  }

  // ---- operations -----------------------------------------------------------------------

  async *listObjects(): AsyncIterable<ListedObject[]> {
    for await (const page of paginateListObjectsV2({ client: this.client }, { Bucket: this.bucket })) {
      yield (page.Contents ?? []).map((o) => ({
        key: o.Key ?? '',
        size: o.Size ?? 0,
        lastModified: o.LastModified ?? new Date(0),
      }));
    }
  }

  /**
   * Creates the bucket (private) if missing, applies CORS for the web origins and the archive
   * lifecycle rule (or removes Mediary's rule when archiving is off; other rules are kept).
   */
  async setup(opts: { corsOrigins: readonly string[] }): Promise<string[]> {
    const timed = <T>(call: (abortSignal: AbortSignal) => Promise<T>) => this.timed(call);
    const done = await setupBucket(this.client, this.bucket, opts.corsOrigins, timed);
    return [...done, ...(await applyArchiveRule(this.client, this.bucket, this.opts.archive, timed))];
  }

  destroy(): void {
    this.client.destroy();
  }
}
