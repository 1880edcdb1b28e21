import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { PartRef } from './types.ts';
import { checksumMismatch, incomplete, tooLarge } from './verify-errors.ts';

/** S3's multipart limits, which every backend follows so one client protocol fits all. */
export const MiB = 1024 * 1024;
export const MIN_PART_BYTES = 5 * MiB;
export const MAX_PART_BYTES = 5 * 1024 * MiB;
export const MAX_PARTS = 10_000;

export interface PartPlan {
  bytes: number;
  partSize: number;
  partCount: number;
}

/**
 * Splits `bytes` into parts of `preferred` bytes (at least 5 MiB), growing the part size in whole
 * MiB when that would need more than 10,000 parts. Every part but the last is `partSize` bytes.
 */
export function planParts(bytes: number, preferred: number): PartPlan {
  let partSize = Math.max(MIN_PART_BYTES, preferred);
  if (Math.ceil(bytes / partSize) > MAX_PARTS) partSize = Math.ceil(bytes / MAX_PARTS / MiB) * MiB;
  if (partSize > MAX_PART_BYTES) throw new RangeError(`${bytes} bytes do not fit in ${MAX_PARTS} parts`);
  return { bytes, partSize, partCount: Math.max(1, Math.ceil(bytes / partSize)) };
}

/** Exact size of part `n` (1-based) under `plan`. */
export function partBytes(plan: PartPlan, n: number): number {
  return n < plan.partCount ? plan.partSize : plan.bytes - (plan.partCount - 1) * plan.partSize;
}

/**
 * A store's own multipart put: streams `body` into the parts of `plan`, one part buffered at a
 * time, counting and hashing as the bytes pass. It stops at the first byte over the declared size
 * and checks the length and (when declared) the sha256 at the end; the caller joins the parts only
 * when this returns, and aborts the upload when it throws. `uploadPart` sends one part (1-based
 * number, its bytes) and gives its ETag.
 */
export async function streamIntoParts(
  body: Readable,
  plan: PartPlan,
  expect: { bytes: number; sha256?: string | undefined },
  uploadPart: (partNumber: number, data: Buffer) => Promise<string>,
): Promise<{ parts: PartRef[]; size: number; sha256: string }> {
  const hash = createHash('sha256');
  const parts: PartRef[] = [];
  let size = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    const partNumber = parts.length + 1;
    const data = Buffer.concat(pending, pendingBytes);
    pending = [];
    pendingBytes = 0;
    parts.push({ partNumber, etag: await uploadPart(partNumber, data) });
  };
  for await (const chunk of body) {
    let buf = chunk as Buffer;
    size += buf.length;
    if (size > expect.bytes) throw tooLarge(expect.bytes);
    hash.update(buf);
    while (buf.length > 0) {
      const want = partBytes(plan, parts.length + 1) - pendingBytes;
      const take = buf.subarray(0, want);
      pending.push(take);
      pendingBytes += take.length;
      buf = buf.subarray(take.length);
      if (pendingBytes === partBytes(plan, parts.length + 1)) await flush();
    }
  }
  if (size < expect.bytes) throw incomplete(expect.bytes, size);
  const sha256 = hash.digest('hex');
  if (expect.sha256 !== undefined && sha256 !== expect.sha256) throw checksumMismatch(expect.sha256, sha256);
  return { parts, size, sha256 };
}

/**
 * A store's own single put of a small object (bounded by the caller's single-put limit): reads the
 * whole body, stopping at the first byte over the declared size, and checks the length and (when
 * declared) the sha256 before anything is written.
 */
export async function readVerified(
  body: Readable,
  expect: { bytes: number; sha256?: string | undefined },
): Promise<{ data: Buffer; size: number; sha256: string }> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > expect.bytes) throw tooLarge(expect.bytes);
    chunks.push(buf);
  }
  if (size < expect.bytes) throw incomplete(expect.bytes, size);
  const data = Buffer.concat(chunks);
  const sha256 = createHash('sha256').update(data).digest('hex');
  if (expect.sha256 !== undefined && sha256 !== expect.sha256) throw checksumMismatch(expect.sha256, sha256);
  return { data, size, sha256 };
}
