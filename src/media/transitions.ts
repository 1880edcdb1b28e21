/**
 * The SQL of every media status change: one guarded UPDATE per transition of ./lifecycle.ts, its
 * `WHERE status IN (…)` and new status taken from {@link TRANSITIONS}. Whoever changes a media's
 * status (completion, cancel, the sweeper, the worker, retry, deletion) calls one of these; a
 * transition the table does not allow matches no row and answers false / undefined.
 */
import { statement } from '../db/named.ts';
import type { Queryable } from '../db/pool.ts';
import {
  failure,
  statusGuard,
  TRANSITIONS,
  type FailureCode,
  type MediaFailure,
  type UploadFailureCode,
} from './lifecycle.ts';
import { MEDIA_COLUMNS, MEDIA_DELETED_CHANNEL, type MediaRecord } from './repo.ts';

const T = TRANSITIONS;

const MARK_UPLOADED = `UPDATE media SET status = '${T.complete.to}', uploaded_at = now(), updated_at = now(),
       content_sha256 = COALESCE($2, content_sha256), content_etag = $3, detected_mime_type = $4,
       storage_backend = $5, storage_uri = $6
     WHERE id = $1 AND ${statusGuard('complete')}
     RETURNING ${MEDIA_COLUMNS.join(', ')}`;

/**
 * PENDING → UPLOADED ({@link TRANSITIONS.complete}): the row's own columns as committed; undefined
 * when another request already moved it on. `backend`/`uri` name the store completion found the bytes in: a session begun before a
 * storage migration and completed after the switch has its bytes on the new store. `prepared`: as
 * a named statement (DATABASE_PREPARED_STATEMENTS; it runs in every upload's completion).
 */
export async function markUploaded(
  db: Queryable,
  id: string,
  content: { sha256: string | null; etag: string; detectedMime: string; backend: string; uri: string },
  { prepared = false }: { prepared?: boolean } = {},
): Promise<MediaRecord | undefined> {
  const values = [id, content.sha256, content.etag, content.detectedMime, content.backend, content.uri];
  const res = await db.query<MediaRecord>(statement(MARK_UPLOADED, values, prepared));
  return res.rows[0];
}

/**
 * PENDING → FAILED ({@link TRANSITIONS.failUpload}): cancelled, expired, or rejected at completion.
 * Never overrides a completion (or a cancel) that won a race: false then.
 */
export async function failUpload(
  db: Queryable,
  id: string,
  error: MediaFailure<UploadFailureCode>,
): Promise<boolean> {
  const res = await db.query(
    `UPDATE media SET status = '${T.failUpload.to}', error = $2, updated_at = now()
     WHERE id = $1 AND ${statusGuard('failUpload')}
     RETURNING id`,
    [id, JSON.stringify({ code: error.code, message: error.message })],
  );
  return res.rowCount === 1;
}

/**
 * Starts an attempt in one statement ({@link TRANSITIONS.startProcessing}): UPLOADED/PROCESSING →
 * PROCESSING, returning the row as it now is; undefined when the media is gone or has moved on
 * (deleted, READY, FAILED).
 */
export async function startProcessing(
  db: Queryable,
  id: string,
  attempt: number,
): Promise<MediaRecord | undefined> {
  const { rows } = await db.query<MediaRecord>(
    `UPDATE media SET status = '${T.startProcessing.to}', processing_attempts = $2, processing_progress = 0,
       updated_at = now()
     WHERE id = $1 AND ${statusGuard('startProcessing')}
     RETURNING ${MEDIA_COLUMNS.join(', ')}`,
    [id, attempt],
  );
  return rows[0];
}

/** An attempt's error (`code`: a final failure, or `processing_error` for one the worker retries). */
export interface ProcessingError {
  code: FailureCode;
  message: string;
  at?: string;
}

/**
 * PROCESSING (or a still-waiting UPLOADED) → FAILED ({@link TRANSITIONS.failProcessing}) with a
 * reason the client can read; false when the media moved on.
 */
export async function markProcessingFailed(
  db: Queryable,
  id: string,
  error: ProcessingError,
): Promise<boolean> {
  const json = JSON.stringify({ code: error.code, message: error.message });
  const res = await db.query(
    `UPDATE media SET status = '${T.failProcessing.to}', error = $2,
       processing_last_error = $2::jsonb || jsonb_build_object('at', now()), updated_at = now()
     WHERE id = $1 AND ${statusGuard('failProcessing')}
     RETURNING id`,
    [id, json],
  );
  return res.rowCount === 1;
}

/**
 * PROCESSING → FAILED ({@link TRANSITIONS.failProcessing}) for an original the malware scan
 * caught, with the row pointed at the quarantined copy (`to`, see layout.ts `quarantineKey`) in
 * the same statement: from then on nothing serves the original, and the orphan sweeper keeps the
 * copy (a row references it). False when the media moved on or its key is no longer `from`.
 */
export async function markQuarantined(
  db: Queryable,
  id: string,
  move: { from: string; to: string; uri: string },
  error: ProcessingError,
): Promise<boolean> {
  const json = JSON.stringify({ code: error.code, message: error.message });
  const res = await db.query(
    `UPDATE media SET status = '${T.failProcessing.to}', error = $2,
       processing_last_error = $2::jsonb || jsonb_build_object('at', now()),
       storage_key = $4, storage_uri = $5, updated_at = now()
     WHERE id = $1 AND ${statusGuard('failProcessing')} AND storage_key = $3
     RETURNING id`,
    [id, json, move.from, move.to, move.uri],
  );
  return res.rowCount === 1;
}

/**
 * The original is missing from the store ({@link TRANSITIONS.loseBytes}): → FAILED
 * `storage_missing`. Only `storage reconcile --apply` calls it, after seeing the object gone.
 */
export async function markBytesLost(db: Queryable, id: string): Promise<boolean> {
  const res = await db.query(
    `UPDATE media SET status = '${T.loseBytes.to}', error = $2, updated_at = now()
     WHERE id = $1 AND ${statusGuard('loseBytes')}
     RETURNING id`,
    [id, JSON.stringify(failure('storage_missing'))],
  );
  return res.rowCount === 1;
}

export interface VariantRecord {
  name: string;
  format: string;
  key: string;
  width: number;
  height: number;
  bytes: number;
}

export interface ReadyResult {
  width: number;
  height: number;
  metadata: Record<string, unknown>;
  gps: Record<string, unknown> | null;
  placeholder: string | null;
  detectedMime: string;
  variants: VariantRecord[];
}

/** Replaces the variants and sets READY; false when the media is no longer PROCESSING. */
export async function markReady(db: Queryable, id: string, r: ReadyResult): Promise<boolean> {
  return (await markReadyReplacing(db, id, r)) !== undefined;
}

/**
 * PROCESSING → READY ({@link TRANSITIONS.finishProcessing}) and the variants replaced, in one
 * statement (one round trip, atomic without a transaction). Answers the keys the media's variants
 * had before (the caller deletes the objects no longer referenced), or undefined when the media is
 * no longer PROCESSING (nothing changed).
 */
export async function markReadyReplacing(
  db: Queryable,
  id: string,
  r: ReadyResult,
): Promise<string[] | undefined> {
  // All parts see the table as it was when the statement started: `previous` lists the old rows,
  // `dropped` deletes the names not produced this time and `upserted` writes the others, so no row
  // is both deleted and inserted (their order within the statement is unspecified). Everything
  // hangs off `ready`: when the media is not PROCESSING, nothing is written.
  const { rows } = await db.query<{ ready: boolean; previous: string[] }>(
    `WITH ready AS (
       UPDATE media SET status = '${T.finishProcessing.to}', width = $2, height = $3, metadata = metadata || $4::jsonb, gps = $5,
         placeholder = $6, detected_mime_type = $7, processing_progress = 100, processing_last_error = NULL,
         error = NULL, processed_at = now(), updated_at = now()
       WHERE id = $1 AND ${statusGuard('finishProcessing')}
       RETURNING id
     ), next AS (
       SELECT * FROM jsonb_to_recordset($8::jsonb)
         AS v(name text, format text, key text, width integer, height integer, bytes bigint)
     ), previous AS (
       SELECT mv.key FROM media_variants mv JOIN ready ON mv.media_id = ready.id
     ), dropped AS (
       DELETE FROM media_variants mv USING ready
       WHERE mv.media_id = ready.id AND mv.name NOT IN (SELECT name FROM next)
       RETURNING mv.key
     ), upserted AS (
       INSERT INTO media_variants (media_id, name, format, key, width, height, bytes)
       SELECT ready.id, next.name, next.format, next.key, next.width, next.height, next.bytes
       FROM ready CROSS JOIN next
       ON CONFLICT (media_id, name) DO UPDATE SET format = EXCLUDED.format, key = EXCLUDED.key,
         width = EXCLUDED.width, height = EXCLUDED.height, bytes = EXCLUDED.bytes, created_at = now()
       RETURNING 1
     )
     SELECT EXISTS (SELECT 1 FROM ready) AS ready,
       coalesce((SELECT array_agg(key) FROM previous), '{}') AS previous,
       (SELECT count(*) FROM dropped) + (SELECT count(*) FROM upserted) AS written`,
    [
      id,
      r.width,
      r.height,
      JSON.stringify(r.metadata),
      r.gps === null ? null : JSON.stringify(r.gps),
      r.placeholder,
      r.detectedMime,
      JSON.stringify(r.variants),
    ],
  );
  return rows[0]!.ready ? rows[0]!.previous : undefined;
}

/**
 * FAILED → UPLOADED ({@link TRANSITIONS.retryProcessing}) for a retry requested by the client;
 * false when it is not FAILED any more.
 */
export async function resetForRetry(db: Queryable, id: string): Promise<boolean> {
  const res = await db.query(
    `UPDATE media SET status = '${T.retryProcessing.to}', error = NULL, processing_attempts = 0, processing_progress = 0,
       updated_at = now()
     WHERE id = $1 AND ${statusGuard('retryProcessing')}
     RETURNING id`,
    [id],
  );
  return res.rowCount === 1;
}

/**
 * Any live state → DELETED ({@link TRANSITIONS.delete}), and the workers told (a running job for
 * it is cancelled); false when it was deleted already.
 */
export async function markDeleted(db: Queryable, id: string): Promise<boolean> {
  const res = await db.query(
    `WITH d AS (
       UPDATE media SET status = '${T.delete.to}', deleted_at = now(), updated_at = now()
       WHERE id = $1 AND ${statusGuard('delete')}
       RETURNING id
     )
     SELECT pg_notify('${MEDIA_DELETED_CHANNEL}', id::text) FROM d`,
    [id],
  );
  return res.rowCount === 1;
}
