/**
 * The part-storage side of tus uploads (src/media/tus.ts): staged parts that are full and
 * committed go to the store's multipart upload, and before each PATCH the staging files are put in
 * line with the committed offset (recovery after a crash, a failed checksum, or a lost disk).
 * The staging files themselves are src/storage/staging.ts.
 */
import type { Logger } from 'pino';
import type { Pool } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import type { StagingFiles } from '../storage/staging.ts';
import type { ObjectStore } from '../storage/types.ts';
import type { MediaRow } from './repo.ts';
import * as trepo from './tus-repo.ts';
import type { TusRow } from './tus-repo.ts';

export interface TusPartContext {
  pool: Pool;
  store: ObjectStore;
  logger: Logger;
  /** The kept whole-upload hash of this media no longer matches its offset. */
  forgetHash(mediaId: string): void;
}

/**
 * Puts the staging state in line with the committed offset before a PATCH: bytes written after
 * the last commit (a crash, a failed checksum) are cut off, and full parts not stored yet (a
 * crash between commit and store) are stored. A staging file shorter than the offset (lost with
 * its disk) moves the offset back to what the store holds, so the client resends from there.
 */
export async function recoverStaging(
  ctx: TusPartContext,
  m: MediaRow,
  row: TusRow,
  files: StagingFiles,
): Promise<TusRow> {
  row = await storeFullParts(ctx, m, row, files);
  const cur = files.partOf(row.upload_offset);
  const expected = row.upload_offset - files.partStart(cur);
  const size = (await files.size(cur)) ?? 0;
  for (const n of await files.partsAbove(cur)) await files.remove(n);
  if (size > expected) await files.truncate(cur, expected);
  if (size < expected) {
    const back = files.partStart(cur);
    ctx.logger.warn(
      { mediaId: m.id, offset: row.upload_offset, staged: size, back },
      'tus: staged bytes are missing (another host, or lost); the offset goes back to what is stored',
    );
    await files.remove(cur);
    ctx.forgetHash(m.id);
    if (await trepo.advanceOffset(ctx.pool, m.id, row.upload_offset, back))
      row = { ...row, upload_offset: back };
  }
  return row;
}

/** Stores the parts that are full and committed (stores without adoption), oldest first. */
export async function storeFullParts(
  ctx: TusPartContext,
  m: MediaRow,
  row: TusRow,
  files: StagingFiles,
): Promise<TusRow> {
  // A single-part upload is one put at the end (no multipart upload for small files).
  if (row.part_size === 0 || m.bytes <= row.part_size) return row;
  let n = row.parts.length + 1;
  while (n * row.part_size <= row.upload_offset) {
    await files.sync();
    row = await storePart(ctx, m, row, files, n, row.part_size);
    n++;
  }
  return row;
}

/** Stores staged part `n` (`bytes` long) as part `n` of the store's multipart upload, then drops it. */
export async function storePart(
  ctx: TusPartContext,
  m: MediaRow,
  row: TusRow,
  files: StagingFiles,
  n: number,
  bytes: number,
): Promise<TusRow> {
  if ((await files.size(n)) !== bytes) {
    throw new Error(`tus staging part ${n} of ${m.id} does not hold the ${bytes} bytes committed`);
  }
  let uploadId = row.store_upload_id;
  if (uploadId === null) {
    const created = await ctx.store.createMultipart(m.storage_key, m.mime_type);
    if (await trepo.setStoreUpload(ctx.pool, m.id, created)) uploadId = created;
    else {
      await ctx.store.abortMultipart(m.storage_key, created).catch(() => undefined);
      uploadId = (await trepo.findTus(ctx.pool, m.id))?.store_upload_id ?? null;
      if (uploadId === null) throw new AppError('upload_locked');
    }
  }
  const part = await ctx.store.putPart(m.storage_key, uploadId, n, files.read(n), bytes);
  const stored = { partNumber: n, etag: part.etag, size: bytes };
  if (!(await trepo.addPart(ctx.pool, m.id, stored))) throw new AppError('upload_locked');
  await files.remove(n);
  return { ...row, store_upload_id: uploadId, parts: [...row.parts, stored] };
}
