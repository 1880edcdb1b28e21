/**
 * What the image and the video job share: the failure class and how a failure ends a job, the
 * verified read of the original (size and sha256, into memory or into a file), throttled progress
 * writes, and storing variants under their content-addressed keys. Plain code over the
 * `ObjectStore` and the `ProcessingRecords` port.
 */
import type { ImageFailureCode, VideoFailureCode } from '../media/lifecycle.ts';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { restorePath } from '../media/archive.ts';
import { variantContentType, variantKey, type VariantFormat } from '../media/layout.ts';
import type { MediaRecord } from '../media/repo.ts';
import { ObjectArchivedError } from '../storage/archive.ts';
import { ObjectTooLargeError, type Allocate, type ObjectStore } from '../storage/types.ts';
import type { ProcessingRecords, RenderedVariant } from './ports.ts';
import type { VariantRecord } from './repo.ts';
import type { JobContext, JobOutcome } from './worker.ts';

/** Longest-edge sizes of the variants (of images and of video posters); the variant's name is its size. */
export const VARIANT_SIZES = [1200, 600, 300, 150] as const;

/** The store operations the jobs use (an in-memory store in unit tests). */
export type JobStore = Pick<ObjectStore, 'get' | 'readAll' | 'stat' | 'put' | 'putBuffer' | 'delete'>;

/** Why a job failed for good: the media's `error.code` (one table: src/media/lifecycle.ts). */
export type FailureCode = ImageFailureCode | VideoFailureCode;

/** An outcome the client must see; retrying would not change it. */
export class JobFailure extends Error {
  constructor(
    readonly code: FailureCode,
    message: string,
  ) {
    super(message);
    this.name = 'JobFailure';
  }
}

/** The original is missing from the store: may be eventual consistency, so it is retried. */
export class OriginalMissingError extends Error {
  override readonly name = 'OriginalMissingError';
}

/** What a client may read about an attempt's error: our own messages, never internals. */
export function publicMessage(err: Error): string {
  // By name: dead letters rebuild the error from the job's stored output.
  if (['OriginalMissingError', 'JobTimeoutError', 'WorkerLostError'].includes(err.name)) return err.message;
  return 'A temporary error interrupted processing.';
}

/** Ends a job with a failure: the media becomes FAILED with the reason, and the job is not retried. */
export async function endWithFailure(
  records: ProcessingRecords,
  media: MediaRecord,
  ctx: JobContext,
  failure: JobFailure,
  err: unknown = undefined,
): Promise<JobOutcome> {
  ctx.logger.warn({ code: failure.code, reason: failure.message, err }, 'processing failed');
  await records.markFailed(media.id, { code: failure.code, message: failure.message });
  return { status: 'failed', code: failure.code, message: failure.message };
}

// ---- the original -------------------------------------------------------------------------------

/**
 * Checks what was read against the declared size and the client's declared sha256 (or the one
 * computed at completion), so a store that could not enforce the checksum, or an object replaced
 * since, is caught; a hash that matched is recorded as verified.
 */
async function verifyOriginal(
  records: ProcessingRecords,
  media: MediaRecord,
  size: number,
  actual: string,
): Promise<void> {
  if (size !== media.bytes) {
    throw new JobFailure('integrity', `The stored object has ${size} bytes, ${media.bytes} were declared.`);
  }
  const expected = media.sha256 ?? media.content_sha256;
  if (expected !== null && actual !== expected) {
    throw new JobFailure('integrity', `The stored bytes hash to ${actual}, not the expected ${expected}.`);
  }
  if (media.content_sha256 === null) await records.recordVerifiedSha256(media.id, actual);
}

/**
 * The original is in archive storage (S3 GLACIER …): no retry of ours changes that for hours, so
 * the media is FAILED with `original_archived` at once; restore, then retry-processing, runs it.
 */
const archived = (media: MediaRecord) =>
  new JobFailure(
    'original_archived',
    `The original is in archive storage: restore it (POST ${restorePath(media.id)}), then retry processing.`,
  );

const tooLarge = (media: MediaRecord) =>
  new JobFailure('integrity', `The stored object is larger than the declared ${media.bytes} bytes.`);

/** Reads the original in one piece (into `allocate`'s buffer) and verifies it. */
export async function readOriginal(
  store: JobStore,
  records: ProcessingRecords,
  media: MediaRecord,
  allocate?: Allocate,
): Promise<Buffer> {
  let bytes: Buffer | undefined;
  try {
    bytes = await store.readAll(media.storage_key, media.bytes, allocate);
  } catch (err) {
    if (err instanceof ObjectTooLargeError) throw tooLarge(media);
    if (err instanceof ObjectArchivedError) throw archived(media);
    throw err;
  }
  if (!bytes) throw new OriginalMissingError('The original object is missing from the store.');
  await verifyOriginal(records, media, bytes.length, createHash('sha256').update(bytes).digest('hex'));
  return bytes;
}

/** Streams the original to `file`, hashing as it goes, and verifies it like {@link readOriginal}. */
export async function copyOriginal(
  store: JobStore,
  records: ProcessingRecords,
  media: MediaRecord,
  file: string,
): Promise<void> {
  const stream = await store.get(media.storage_key).catch((err: unknown) => {
    throw err instanceof ObjectArchivedError ? archived(media) : err;
  });
  if (!stream) throw new OriginalMissingError('The original object is missing from the store.');
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  let size = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > media.bytes) throw tooLarge(media);
      hash.update(chunk);
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', resolve));
    }
    out.end();
    await finished(out);
  } finally {
    stream.destroy();
    out.destroy();
  }
  await verifyOriginal(records, media, size, hash.digest('hex'));
}

// ---- progress -----------------------------------------------------------------------------------

export interface ProgressOptions {
  /** Writes are at least this far apart. */
  everyMs: number;
  /** The first write waits this long after the start (a short job then writes none). */
  firstAfterMs: number;
}

/**
 * Progress for the status endpoint without holding up the job: at most one write in flight and
 * at most one per `everyMs`; a value reported meanwhile replaces any older one still waiting, so
 * writes stay in order. `report(p, true)` (a milestone) skips the wait, not the order. `close()`
 * drops what is still waiting.
 */
export class ProgressReporter {
  private writing = false;
  private pending: number | undefined;
  private urgent = false;
  private last = -1;
  private nextAt: number;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly write: (percent: number) => Promise<unknown>,
    private readonly opts: ProgressOptions,
  ) {
    this.nextAt = Date.now() + opts.firstAfterMs;
  }

  /** A reporter writing through `records` (failures only logged: progress is a courtesy). */
  static of(records: ProcessingRecords, mediaId: string, ctx: JobContext, opts: ProgressOptions) {
    return new ProgressReporter(
      (p) => records.setProgress(mediaId, p).catch((err: unknown) => ctx.logger.debug({ err }, 'progress')),
      opts,
    );
  }

  report(percent: number, milestone = false): void {
    const p = Math.round(percent);
    if (p <= this.last || this.closed) return;
    this.last = p;
    this.pending = p;
    if (milestone) {
      this.urgent = true;
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.schedule();
  }

  close(): void {
    this.closed = true;
    this.pending = undefined;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.writing || this.timer || this.pending === undefined || this.closed) return;
    const wait = this.urgent ? 0 : this.nextAt - Date.now();
    if (wait <= 0) {
      void this.flush();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.schedule();
    }, wait);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    const p = this.pending!;
    this.pending = undefined;
    this.urgent = false;
    this.writing = true;
    this.nextAt = Date.now() + this.opts.everyMs;
    await this.write(p);
    this.writing = false;
    this.schedule();
  }
}

// ---- variants -----------------------------------------------------------------------------------

/**
 * Stores one rendered variant under its content-addressed key (skipped when that key already
 * holds these very bytes) and returns its record; `written` says whether this call wrote it.
 */
export async function putVariant(
  store: JobStore,
  mediaId: string,
  format: VariantFormat,
  v: RenderedVariant,
): Promise<{ record: VariantRecord; written: boolean }> {
  const sha256 = createHash('sha256').update(v.data).digest('hex');
  const key = variantKey(mediaId, sha256, format);
  const written = !(await store.stat(key));
  if (written) {
    const expect = { contentType: variantContentType(format), bytes: v.data.length, sha256 };
    await (store.putBuffer
      ? store.putBuffer(key, v.data, expect)
      : store.put(key, Readable.from([v.data]), expect));
  }
  const record = {
    name: String(v.size),
    format,
    key,
    width: v.width,
    height: v.height,
    bytes: v.data.length,
  };
  return { record, written };
}

/**
 * After the READY write: deletes the objects nothing references any more. `ready` says whether
 * the write happened; if so `previous` (what the media referenced before) minus `current` goes,
 * else (deleted or finished elsewhere meanwhile) what this run wrote and the media does not
 * reference.
 */
export async function dropUnreferenced(
  store: JobStore,
  records: ProcessingRecords,
  mediaId: string,
  outcome: { ready: true; previous: string[]; current: string[] } | { ready: false; written: string[] },
): Promise<void> {
  if (outcome.ready) {
    const current = new Set(outcome.current);
    for (const key of outcome.previous) if (!current.has(key)) await store.delete(key);
    return;
  }
  const referenced = new Set(await records.referencedKeys(mediaId));
  for (const key of outcome.written) if (!referenced.has(key)) await store.delete(key);
}
