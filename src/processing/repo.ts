/** SQL of the processing side: job claims, the media row's processing state, variants. */
import type { Queryable } from '../db/pool.ts';
import { MEDIA_COLUMNS, type MediaRecord } from '../media/repo.ts';

/** A worker's LISTEN connection: pid + backend_start (text, full precision) identify it. */
export interface Backend {
  pid: number;
  start: string;
}

// ---- claims ---------------------------------------------------------------------------------

export async function insertClaim(db: Queryable, jobId: string, mediaId: string, b: Backend): Promise<void> {
  await db.query(
    `INSERT INTO processing_claims (job_id, media_id, backend_pid, backend_start) VALUES ($1, $2, $3, $4::timestamptz)
     ON CONFLICT (job_id) DO UPDATE SET backend_pid = $3, backend_start = $4::timestamptz, claimed_at = now()`,
    [jobId, mediaId, b.pid, b.start],
  );
}

export async function deleteClaim(db: Queryable, jobId: string): Promise<void> {
  await db.query('DELETE FROM processing_claims WHERE job_id = $1', [jobId]);
}

export async function moveClaims(db: Queryable, from: Backend, to: Backend): Promise<void> {
  await db.query(
    `UPDATE processing_claims SET backend_pid = $3, backend_start = $4::timestamptz
     WHERE backend_pid = $1 AND backend_start = $2::timestamptz`,
    [from.pid, from.start, to.pid, to.start],
  );
}

/** Removes and returns claims whose worker connection no longer exists (the worker died). */
export async function takeOrphanedClaims(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ job_id: string }>(
    `DELETE FROM processing_claims c
     WHERE NOT EXISTS (
       SELECT 1 FROM pg_stat_activity a WHERE a.pid = c.backend_pid AND a.backend_start = c.backend_start)
     RETURNING job_id`,
  );
  return rows.map((r) => r.job_id);
}

// ---- the media row ----------------------------------------------------------------------------

export interface ProcessingError {
  code: string;
  message: string;
  at?: string;
}

/**
 * Starts an attempt in one statement: UPLOADED/PROCESSING → PROCESSING, returning the row as it
 * now is; undefined when the media is gone or has moved on (deleted, READY, FAILED).
 */
export async function startProcessing(
  db: Queryable,
  id: string,
  attempt: number,
): Promise<MediaRecord | undefined> {
  const { rows } = await db.query<MediaRecord>(
    `UPDATE media SET status = 'PROCESSING', processing_attempts = $2, processing_progress = 0,
       updated_at = now()
     WHERE id = $1 AND status IN ('UPLOADED', 'PROCESSING')
     RETURNING ${MEDIA_COLUMNS.join(', ')}`,
    [id, attempt],
  );
  return rows[0];
}

export async function setProgress(db: Queryable, id: string, progress: number): Promise<void> {
  await db.query(`UPDATE media SET processing_progress = $2 WHERE id = $1 AND status = 'PROCESSING'`, [
    id,
    Math.max(0, Math.min(100, Math.round(progress))),
  ]);
}

/**
 * The worker hashed the original and it matched what was declared (or nothing was): the bytes are
 * verified now (`sha256Verified`), for stores that could not check them at completion (S3
 * multipart, Ceph). A hash already recorded is never replaced.
 */
export async function recordVerifiedSha256(db: Queryable, id: string, sha256: string): Promise<void> {
  await db.query(`UPDATE media SET content_sha256 = $2 WHERE id = $1 AND content_sha256 IS NULL`, [
    id,
    sha256,
  ]);
}

export async function recordAttemptError(db: Queryable, id: string, error: ProcessingError): Promise<void> {
  await db.query(`UPDATE media SET processing_last_error = $2, updated_at = now() WHERE id = $1`, [
    id,
    JSON.stringify({ ...error, at: new Date().toISOString() }),
  ]);
}

/** PROCESSING (or a still-waiting UPLOADED) → FAILED with a reason the client can read. */
export async function markProcessingFailed(
  db: Queryable,
  id: string,
  error: ProcessingError,
): Promise<boolean> {
  const json = JSON.stringify({ code: error.code, message: error.message });
  const res = await db.query(
    `UPDATE media SET status = 'FAILED', error = $2,
       processing_last_error = $2::jsonb || jsonb_build_object('at', now()), updated_at = now()
     WHERE id = $1 AND status IN ('UPLOADED', 'PROCESSING')`,
    [id, json],
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

/** The variant keys currently recorded for a media. */
export async function variantKeys(db: Queryable, id: string): Promise<string[]> {
  const { rows } = await db.query<{ key: string }>('SELECT key FROM media_variants WHERE media_id = $1', [
    id,
  ]);
  return rows.map((r) => r.key);
}

/** Replaces the variants and sets READY; false when the media is no longer PROCESSING. */
export async function markReady(db: Queryable, id: string, r: ReadyResult): Promise<boolean> {
  return (await markReadyReplacing(db, id, r)) !== undefined;
}

/**
 * Sets READY and replaces the variants in one statement (one round trip, atomic without a
 * transaction). Answers the keys the media's variants had before (the caller deletes the objects
 * no longer referenced), or undefined when the media is no longer PROCESSING (nothing changed).
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
       UPDATE media SET status = 'READY', width = $2, height = $3, metadata = metadata || $4::jsonb, gps = $5,
         placeholder = $6, detected_mime_type = $7, processing_progress = 100, processing_last_error = NULL,
         error = NULL, processed_at = now(), updated_at = now()
       WHERE id = $1 AND status = 'PROCESSING'
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

/** FAILED → UPLOADED for a retry requested by the client; false when it is not FAILED any more. */
export async function resetForRetry(db: Queryable, id: string): Promise<boolean> {
  const res = await db.query(
    `UPDATE media SET status = 'UPLOADED', error = NULL, processing_attempts = 0, processing_progress = 0,
       updated_at = now()
     WHERE id = $1 AND status = 'FAILED'`,
    [id],
  );
  return res.rowCount === 1;
}
