import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Storage, type File } from '@google-cloud/storage';
import type { AuthClient, GoogleAuth } from 'google-auth-library';
import { StoreUnavailableError } from './errors.ts';
import { createGcsAuth, signGcsUrl } from './gcs-signing.ts';
import {
  completionError,
  isNotFoundStatus,
  parseXml,
  unavailable,
  uploadClosed,
  xmlCall,
  xmlError,
  type XmlCall,
  type XmlDoc,
  type XmlResponse,
} from './gcs-xml.ts';
import { planParts, readVerified, streamIntoParts } from './parts.ts';
import { readBody } from './s3-support.ts';
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

export interface GcsStoreOptions {
  bucket: string;
  projectId?: string | undefined;
  /** Default https://storage.googleapis.com; a local stand-in in tests. */
  apiEndpoint?: string | undefined;
  keyFile?: string | undefined;
  serviceAccountEmail?: string | undefined;
  /** IAM Credentials base URL for signBlob, ending in `/v1/projects/-/serviceAccounts/`. */
  signingEndpoint?: string | undefined;
  /** `put` streams objects above this size as multipart uploads. */
  singlePutMaxBytes: number;
  partSize: number;
  /** Whole-call deadline of calls without a request body (default 15 s). */
  operationTimeoutMs?: number | undefined;
  /** Credentials to use instead of those built from the options (tests, benchmarks). */
  auth?: GoogleAuth<AuthClient> | undefined;
}

const DEFAULT_ENDPOINT = 'https://storage.googleapis.com';
const text = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : '');

/**
 * Google Cloud Storage through `@google-cloud/storage` (metadata, lists, the bucket) and the XML
 * API (bytes and multipart uploads, which the JSON API does not have). Clients upload and
 * download with V4 signed URLs; the bucket stays private (uniform access, public access
 * prevention). GCS cannot verify a SHA-256 (it hashes MD5 and CRC32C only), so a declared sha256
 * of a direct upload is checked by whoever reads the bytes next, as on S3 without checksums.
 */
export class GcsObjectStore implements ObjectStore {
  readonly backend = 'gcs' as const;
  readonly capabilities = {
    presignedPut: true,
    // Content-Length is a signed header (another length breaks the signature) and
    // x-goog-content-length-range states the same bound for GCS to check itself.
    enforcesLength: true,
    enforcesContentType: true,
    enforcesChecksum: false,
    presignedParts: true,
    presignedGet: true,
  };
  readonly storage: Storage;
  readonly auth: GoogleAuth<AuthClient>;
  private readonly bucket: string;
  private readonly endpoint: string;
  private readonly operationTimeoutMs: number;

  constructor(private readonly opts: GcsStoreOptions) {
    this.bucket = opts.bucket;
    this.endpoint = (opts.apiEndpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
    this.auth = opts.auth ?? createGcsAuth(opts);
    this.storage = new Storage({
      // Storage types its GoogleAuth narrower than the AuthClient any GoogleAuth may hold.
      authClient: this.auth as unknown as GoogleAuth,
      ...(opts.projectId !== undefined ? { projectId: opts.projectId } : {}),
      ...(opts.apiEndpoint !== undefined
        ? { apiEndpoint: this.endpoint, useAuthWithCustomEndpoint: true }
        : {}),
      retryOptions: { autoRetry: true, maxRetries: 2, totalTimeout: 30 },
    });
    this.operationTimeoutMs = opts.operationTimeoutMs ?? 15_000;
  }

  private file(key: string): File {
    return this.storage.bucket(this.bucket).file(key);
  }

  /** A bodiless call under a deadline; past it (or on 429/5xx/no answer) → StoreUnavailableError. */
  private async timed<T>(call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), this.operationTimeoutMs);
    try {
      return await call(ctl.signal);
    } catch (err) {
      if (ctl.signal.aborted)
        throw new StoreUnavailableError(
          `the object store did not answer within ${this.operationTimeoutMs} ms`,
          {
            cause: err,
          },
        );
      throw unavailable(err) ?? err;
    } finally {
      clearTimeout(timer);
    }
  }

  private xml(call: XmlCall): Promise<XmlResponse> {
    return xmlCall(this.auth, this.endpoint, this.bucket, call);
  }

  /** A bodiless XML call under the deadline; a non-2xx answer throws GcsXmlError. */
  private async xmlOk(call: Omit<XmlCall, 'signal'>): Promise<XmlResponse> {
    return this.timed(async (signal) => {
      const res = await this.xml({ ...call, signal });
      if (res.status >= 300) throw xmlError(res);
      return res;
    });
  }

  // ---- objects --------------------------------------------------------------------------

  async put(key: string, body: Readable, expect: PutExpectation): Promise<PutResult> {
    assertSafeKey(key);
    if (expect.bytes > this.opts.singlePutMaxBytes) return this.putMultipart(key, body, expect);
    // Small objects: buffer (bounded by singlePutMaxBytes), check, then one PUT with Content-MD5
    // (GCS verifies it), so nothing is written unless every expectation holds.
    const { data, size, sha256 } = await readVerified(body, expect);
    const res = await this.xml({
      method: 'PUT',
      key,
      body: data,
      headers: {
        'Content-Type': expect.contentType,
        'Content-Length': String(size),
        'Content-MD5': createHash('md5').update(data).digest('base64'),
        ...(expect.exclusive ? { 'x-goog-if-generation-match': '0' } : {}),
      },
    });
    if (res.status === 412) throw new ObjectExistsError(key, sha256);
    if (res.status >= 300) throw unavailable(xmlError(res)) ?? xmlError(res);
    return { size, sha256 };
  }

  /** Large objects: one part buffered at a time, hashed as they pass; aborted unless all checks hold. */
  private async putMultipart(key: string, body: Readable, expect: PutExpectation): Promise<PutResult> {
    const plan = planParts(expect.bytes, this.opts.partSize);
    const uploadId = await this.createMultipart(key, expect.contentType);
    try {
      const { parts, size, sha256 } = await streamIntoParts(body, plan, expect, async (n, data) => {
        const res = await this.xml({
          method: 'PUT',
          key,
          query: { partNumber: String(n), uploadId },
          body: data,
          headers: {
            'Content-Length': String(data.length),
            'Content-MD5': createHash('md5').update(data).digest('base64'),
          },
        });
        if (res.status >= 300) throw unavailable(xmlError(res)) ?? xmlError(res);
        return res.headers['etag'] ?? '';
      });
      await this.completeMultipart(key, uploadId, parts, { exclusive: expect.exclusive }).catch(
        (err: unknown) => {
          throw err instanceof ObjectExistsError ? new ObjectExistsError(key, sha256) : err;
        },
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

  private async getObject(
    key: string,
    range?: ByteRange,
  ): Promise<{ body: Readable; size: number | undefined } | undefined> {
    assertSafeKey(key);
    // The deadline covers the answer's headers; the body is bounded by the caller.
    const res = await this.timed((signal) =>
      this.xml({
        method: 'GET',
        key,
        stream: true,
        signal,
        headers: range ? { Range: `bytes=${range.start}-${range.end}` } : {},
      }),
    );
    if (res.status === 404) return undefined;
    if (res.status >= 300 || !res.stream) throw unavailable(xmlError(res)) ?? xmlError(res);
    const length = res.headers['content-length'];
    return { body: res.stream, size: length !== undefined ? Number(length) : undefined };
  }

  async readAll(key: string, maxBytes: number, allocate?: Allocate): Promise<Buffer | undefined> {
    const found = await this.getObject(key);
    if (!found) return undefined;
    return readBody(found.body, found.size, maxBytes, allocate);
  }

  async stat(key: string): Promise<ObjectStat | undefined> {
    assertSafeKey(key);
    try {
      const [meta] = await this.timed(() => this.file(key).getMetadata());
      return {
        size: Number(meta.size ?? 0),
        // The generation changes whenever the bytes under the key do: a strong validator.
        etag: `"${text(meta.generation)}"`,
        lastModified: new Date(text(meta.updated) || 0),
      };
    } catch (err) {
      if (isNotFoundStatus(err)) return undefined;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    assertSafeKey(key);
    await this.timed(() => this.file(key).delete({ ignoreNotFound: true }));
  }

  signedGetUrl(key: string, opts: SignedGetOptions): Promise<string> {
    assertSafeKey(key);
    return signGcsUrl(this.storage, {
      method: 'GET',
      bucket: this.bucket,
      key,
      expiresInSeconds: opts.expiresInSeconds,
      queryParams: {
        'response-content-type': opts.contentType,
        'response-content-disposition': opts.contentDisposition,
      },
      signingEndpoint: this.opts.signingEndpoint,
      // Signed as of a window's start, the same URL comes back within it (caches reuse it).
      now: opts.signedAt !== undefined ? new Date(opts.signedAt * 1000) : undefined,
    });
  }

  /**
   * Signed: Content-Type, Content-Length (another type or length breaks the signature: 403),
   * x-goog-content-length-range (GCS refuses another length itself) and, for an exclusive put,
   * x-goog-if-generation-match: 0 (GCS refuses with 412 to replace an object).
   */
  async presignPut(key: string, expect: PutExpectation, expiresInSeconds: number): Promise<PresignedPut> {
    assertSafeKey(key);
    const headers: Record<string, string> = {
      'Content-Type': expect.contentType,
      'x-goog-content-length-range': `${expect.bytes},${expect.bytes}`,
      ...(expect.exclusive ? { 'x-goog-if-generation-match': '0' } : {}),
    };
    const url = await signGcsUrl(this.storage, {
      method: 'PUT',
      bucket: this.bucket,
      key,
      expiresInSeconds,
      headers: { ...headers, 'Content-Length': String(expect.bytes) },
      signingEndpoint: this.opts.signingEndpoint,
    });
    return { method: 'PUT', url, headers };
  }

  uri(key: string): string {
    assertSafeKey(key);
    return `gs://${this.bucket}/${key}`;
  }

  // ---- multipart (the XML API's, which follows S3's) -------------------------------------

  async createMultipart(key: string, contentType: string): Promise<string> {
    assertSafeKey(key);
    const res = await this.xmlOk({
      method: 'POST',
      key,
      query: { uploads: '' },
      headers: { 'Content-Type': contentType, 'Content-Length': '0' },
    });
    const result = parseXml(res.text)['InitiateMultipartUploadResult'] as XmlDoc | undefined;
    const id = text(result?.['UploadId']);
    if (!id) throw new Error('initiating a multipart upload returned no UploadId');
    return id;
  }

  async presignPart(
    key: string,
    uploadId: string,
    partNumber: number,
    bytes: number,
    expiresInSeconds: number,
  ): Promise<PresignedPut> {
    assertSafeKey(key);
    const url = await signGcsUrl(this.storage, {
      method: 'PUT',
      bucket: this.bucket,
      key,
      expiresInSeconds,
      headers: { 'Content-Length': String(bytes) },
      queryParams: { partNumber: String(partNumber), uploadId },
      signingEndpoint: this.opts.signingEndpoint,
    });
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
    const res = await this.xml({
      method: 'PUT',
      key,
      query: { partNumber: String(partNumber), uploadId },
      body,
      headers: { 'Content-Length': String(bytes) },
    });
    if (res.status === 404) throw uploadClosed();
    if (res.status >= 300) throw unavailable(xmlError(res)) ?? xmlError(res);
    return { partNumber, etag: res.headers['etag'] ?? '', size: bytes };
  }

  async listParts(key: string, uploadId: string): Promise<StoredPart[] | undefined> {
    assertSafeKey(key);
    const parts = new Map<number, StoredPart>();
    let marker = '';
    for (;;) {
      const res = await this.timed((signal) =>
        this.xml({
          method: 'GET',
          key,
          query: { uploadId, ...(marker ? { 'part-number-marker': marker } : {}) },
          signal,
        }),
      );
      if (res.status === 404) return undefined;
      if (res.status >= 300) throw unavailable(xmlError(res)) ?? xmlError(res);
      const page = (parseXml(res.text)['ListPartsResult'] ?? {}) as XmlDoc;
      for (const p of (page['Part'] ?? []) as XmlDoc[]) {
        const n = Number(p['PartNumber']);
        parts.set(n, { partNumber: n, etag: text(p['ETag']), size: Number(p['Size']) });
      }
      const next = text(page['NextPartNumberMarker']);
      if (text(page['IsTruncated']) !== 'true' || !next || Number(next) <= Number(marker || 0)) break;
      marker = next;
    }
    return [...parts.values()].sort((a, b) => a.partNumber - b.partNumber);
  }

  /**
   * Joins the parts. What GCS gives back is the object's size and CRC32C (a composite object has
   * no MD5), neither of which proves a SHA-256: the result carries no sha256 and the worker
   * verifies the declared one when it reads the bytes.
   */
  async completeMultipart(
    key: string,
    uploadId: string,
    parts: PartRef[],
    opts: { exclusive?: boolean | undefined } = {},
  ): Promise<{ size: number }> {
    assertSafeKey(key);
    const body =
      '<CompleteMultipartUpload>' +
      parts
        .map(
          (p) =>
            `<Part><PartNumber>${p.partNumber}</PartNumber><ETag>${p.etag.replace(/[<>&]/g, '')}</ETag></Part>`,
        )
        .join('') +
      '</CompleteMultipartUpload>';
    const res = await this.timed((signal) =>
      this.xml({
        method: 'POST',
        key,
        query: { uploadId },
        body,
        headers: {
          'Content-Type': 'application/xml',
          ...(opts.exclusive ? { 'x-goog-if-generation-match': '0' } : {}),
        },
        signal,
      }),
    );
    if (res.status === 412) throw new ObjectExistsError(key, '');
    if (res.status >= 300) throw completionError(xmlError(res));
    const stat = await this.stat(key);
    if (!stat) throw new Error(`object ${key} missing right after completing its multipart upload`);
    return { size: stat.size };
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    assertSafeKey(key);
    const res = await this.timed((signal) =>
      this.xml({ method: 'DELETE', key, query: { uploadId }, signal }),
    );
    if (res.status === 404 || res.status < 300) return;
    throw unavailable(xmlError(res)) ?? xmlError(res);
  }

  async *listMultipartUploads(): AsyncIterable<PendingMultipart> {
    let keyMarker = '';
    let uploadIdMarker = '';
    for (;;) {
      const res = await this.xmlOk({
        method: 'GET',
        query: {
          uploads: '',
          ...(keyMarker ? { 'key-marker': keyMarker } : {}),
          ...(uploadIdMarker ? { 'upload-id-marker': uploadIdMarker } : {}),
        },
      });
      const page = (parseXml(res.text)['ListMultipartUploadsResult'] ?? {}) as XmlDoc;
      for (const u of (page['Upload'] ?? []) as XmlDoc[]) {
        const key = text(u['Key']);
        const uploadId = text(u['UploadId']);
        if (key && uploadId) yield { key, uploadId, initiated: new Date(text(u['Initiated']) || 0) };
      }
      const nextKey = text(page['NextKeyMarker']);
      const nextId = text(page['NextUploadIdMarker']);
      if (text(page['IsTruncated']) !== 'true' || (nextKey === keyMarker && nextId === uploadIdMarker))
        return;
      keyMarker = nextKey;
      uploadIdMarker = nextId;
    }
  }

  // ---- operations -----------------------------------------------------------------------

  async *listObjects(): AsyncIterable<ListedObject[]> {
    let pageToken: string | undefined;
    do {
      const [files, next] = await this.timed(() =>
        this.storage
          .bucket(this.bucket)
          .getFiles({ autoPaginate: false, maxResults: 1000, ...(pageToken ? { pageToken } : {}) }),
      );
      yield files.map((f) => ({
        key: f.name,
        size: Number(f.metadata.size ?? 0),
        lastModified: new Date(text(f.metadata.updated) || 0),
      }));
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
  }

  /**
   * The bucket as production needs it: created if missing, uniform bucket-level access (no
   * object ACLs), public access prevention enforced, CORS for the web origins (direct uploads
   * from browsers read each part's ETag).
   */
  async setup(opts: { corsOrigins: readonly string[] }): Promise<string[]> {
    const done: string[] = [];
    const bucket = this.storage.bucket(this.bucket);
    const iamConfiguration = {
      uniformBucketLevelAccess: { enabled: true },
      publicAccessPrevention: 'enforced',
    };
    const [exists] = await this.timed(() => bucket.exists());
    if (exists) done.push(`bucket ${this.bucket} exists`);
    else {
      await this.timed(() => this.storage.createBucket(this.bucket, { iamConfiguration }));
      done.push(`bucket ${this.bucket} created`);
    }
    const cors =
      opts.corsOrigins.length > 0
        ? [
            {
              origin: [...opts.corsOrigins],
              method: ['GET', 'HEAD', 'PUT'],
              responseHeader: [
                'Content-Type',
                'ETag',
                'x-goog-content-length-range',
                'x-goog-if-generation-match',
              ],
              maxAgeSeconds: 3600,
            },
          ]
        : [];
    await this.timed(() => bucket.setMetadata({ iamConfiguration, cors }));
    done.push('uniform bucket-level access on, public access prevention enforced');
    if (cors.length > 0) done.push(`CORS applied for ${opts.corsOrigins.join(', ')}`);
    const [meta] = await this.timed(() => bucket.getMetadata());
    const iam = meta.iamConfiguration;
    if (iam?.uniformBucketLevelAccess?.enabled !== true || iam.publicAccessPrevention !== 'enforced')
      throw new Error(`bucket ${this.bucket} did not keep uniform access and public access prevention`);
    return done;
  }
}
