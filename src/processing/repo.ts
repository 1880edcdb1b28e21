/** SQL of the processing side: job claims, the media row's progress and attempt errors, variants. */
import type { Queryable } from '../db/pool.ts';
import type { ProcessingError } from '../media/transitions.ts';
import type { JobRef, QueuedJob } from './ports.ts';

// The media status changes of processing are transitions of the media lifecycle.
export {
  markProcessingFailed,
  markReady,
  markReadyReplacing,
  resetForRetry,
  startProcessing,
  type ProcessingError,
  type ReadyResult,
  type VariantRecord,
} from '../media/transitions.ts';

/** A worker's LISTEN connection: pid + backend_start (text, full precision) identify it. */
export interface Backend {
  pid: number;
  start: string;
}

// ---- claims ---------------------------------------------------------------------------------

export async function insertClaim(db: Queryable, job: QueuedJob, b: Backend): Promise<void> {
  await db.query(
    `INSERT INTO processing_claims (job_id, media_id, backend_pid, backend_start, lane)
     VALUES ($1, $2, $3, $4::timestamptz, $5)
     ON CONFLICT (job_id) DO UPDATE SET backend_pid = $3, backend_start = $4::timestamptz, claimed_at = now()`,
    [job.id, job.data.mediaId, b.pid, b.start, job.lane],
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

/** Removes and returns the jobs of claims whose worker connection no longer exists (the worker died). */
export async function takeOrphanedClaims(db: Queryable): Promise<JobRef[]> {
  const { rows } = await db.query<{ job_id: string; lane: JobRef['lane'] }>(
    `DELETE FROM processing_claims c
     WHERE NOT EXISTS (
       SELECT 1 FROM pg_stat_activity a WHERE a.pid = c.backend_pid AND a.backend_start = c.backend_start)
     RETURNING job_id, lane`,
  );
  return rows.map((r) => ({ id: r.job_id, lane: r.lane }));
}

// ---- the media row ----------------------------------------------------------------------------

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

/** The variant keys currently recorded for a media. */
export async function variantKeys(db: Queryable, id: string): Promise<string[]> {
  const { rows } = await db.query<{ key: string }>('SELECT key FROM media_variants WHERE media_id = $1', [
    id,
  ]);
  return rows.map((r) => r.key);
}
