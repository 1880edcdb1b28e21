/**
 * An ObjectStore kept in a Map, for fast unit tests of the media use cases (no disk, no S3). It
 * keeps the contract the use cases rely on: a put is all or nothing (length and sha256 checked
 * before the object appears), `exclusive` never replaces an object. Multipart is not modelled:
 * the real stores' contract suite covers it.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { AppError } from '../../src/errors.ts';
import {
  ObjectExistsError,
  ObjectTooLargeError,
  type ByteRange,
  type ObjectStat,
  type ObjectStore,
  type PutExpectation,
  type PutResult,
} from '../../src/storage/types.ts';

interface Stored {
  data: Buffer;
  sha256: string;
  contentType: string;
  lastModified: Date;
}

export class MemoryObjectStore implements ObjectStore {
  readonly backend = 'local' as const;
  readonly capabilities = {
    presignedPut: false,
    enforcesLength: true,
    enforcesContentType: false,
    enforcesChecksum: true,
    presignedParts: false,
    presignedGet: false,
  };
  readonly objects = new Map<string, Stored>();

  async put(key: string, body: Readable, expect: PutExpectation): Promise<PutResult> {
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(Buffer.from(c as Uint8Array));
    const data = Buffer.concat(chunks);
    if (data.length > expect.bytes) throw new AppError('upload_too_large');
    if (data.length < expect.bytes) throw new AppError('upload_incomplete');
    const sha256 = createHash('sha256').update(data).digest('hex');
    if (expect.sha256 !== undefined && expect.sha256 !== sha256) throw new AppError('checksum_mismatch');
    const existing = this.objects.get(key);
    if (expect.exclusive && existing) throw new ObjectExistsError(key, sha256);
    this.objects.set(key, { data, sha256, contentType: expect.contentType, lastModified: new Date() });
    return { size: data.length, sha256 };
  }

  async get(key: string, range?: ByteRange): Promise<Readable | undefined> {
    const o = this.objects.get(key);
    if (!o) return undefined;
    return Readable.from([range ? o.data.subarray(range.start, range.end + 1) : o.data]);
  }

  async readAll(key: string, maxBytes: number): Promise<Buffer | undefined> {
    const o = this.objects.get(key);
    if (!o) return undefined;
    if (o.data.length > maxBytes) throw new ObjectTooLargeError(o.data.length, maxBytes);
    return o.data;
  }

  async stat(key: string): Promise<ObjectStat | undefined> {
    const o = this.objects.get(key);
    return o && { size: o.data.length, etag: `"${o.sha256}"`, lastModified: o.lastModified };
  }

  async delete(key: string): Promise<void> {
    this.objects.delete(key);
  }

  async signedGetUrl(key: string): Promise<string> {
    return `memory://${key}`;
  }

  uri(key: string): string {
    return `memory://${key}`;
  }

  async *listObjects() {
    yield [...this.objects].map(([key, o]) => ({ key, size: o.data.length, lastModified: o.lastModified }));
  }

  async setup(): Promise<string[]> {
    return [];
  }

  createMultipart(): Promise<string> {
    return Promise.reject(new Error('MemoryObjectStore does not model multipart uploads'));
  }
  putPart(): Promise<never> {
    return Promise.reject(new Error('MemoryObjectStore does not model multipart uploads'));
  }
  listParts(): Promise<undefined> {
    return Promise.resolve(undefined);
  }
  completeMultipart(): Promise<never> {
    return Promise.reject(new Error('MemoryObjectStore does not model multipart uploads'));
  }
  async abortMultipart(): Promise<void> {}
  async *listMultipartUploads() {}
}
