import type { Queryable } from '../db/pool.ts';

export type MultipartState = 'OPEN' | 'COMPLETING' | 'COMPLETED' | 'ABORTED';

export interface MultipartRow {
  media_id: string;
  upload_id: string;
  storage_backend: string;
  storage_key: string;
  part_size: number;
  part_count: number;
  state: MultipartState;
  created_at: Date;
  updated_at: Date;
}

/** Inserts the upload for a media; false when another request already began one. */
export async function insertMultipart(
  db: Queryable,
  m: { mediaId: string; uploadId: string; backend: string; key: string; partSize: number; partCount: number },
): Promise<boolean> {
  const res = await db.query(
    `INSERT INTO multipart_uploads (media_id, upload_id, storage_backend, storage_key, part_size, part_count)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (media_id) DO NOTHING`,
    [m.mediaId, m.uploadId, m.backend, m.key, m.partSize, m.partCount],
  );
  return res.rowCount === 1;
}

export async function findMultipart(db: Queryable, mediaId: string): Promise<MultipartRow | undefined> {
  const { rows } = await db.query<MultipartRow>('SELECT * FROM multipart_uploads WHERE media_id = $1', [
    mediaId,
  ]);
  return rows[0];
}

/**
 * OPEN → COMPLETING, so exactly one request joins the parts. A COMPLETING claim older than
 * `staleSeconds` (its process died) can be taken over.
 */
export async function claimCompletion(
  db: Queryable,
  mediaId: string,
  staleSeconds: number,
): Promise<boolean> {
  const res = await db.query(
    `UPDATE multipart_uploads SET state = 'COMPLETING', updated_at = now()
     WHERE media_id = $1 AND (state = 'OPEN'
       OR (state = 'COMPLETING' AND updated_at < now() - make_interval(secs => $2)))`,
    [mediaId, staleSeconds],
  );
  return res.rowCount === 1;
}

export async function setState(
  db: Queryable,
  mediaId: string,
  from: readonly MultipartState[],
  to: MultipartState,
): Promise<boolean> {
  const res = await db.query(
    `UPDATE multipart_uploads SET state = $3, updated_at = now() WHERE media_id = $1 AND state = ANY($2)`,
    [mediaId, from, to],
  );
  return res.rowCount === 1;
}

/** Store upload ids still wanted (OPEN or COMPLETING) among `uploadIds`. */
/** Points an open (or completing) row at a new store upload; false if the row moved on meanwhile. */
export async function replaceUploadId(
  db: Queryable,
  mediaId: string,
  oldUploadId: string,
  newUploadId: string,
): Promise<boolean> {
  const res = await db.query(
    `UPDATE multipart_uploads SET upload_id = $3, updated_at = now()
      WHERE media_id = $1 AND upload_id = $2 AND state IN ('OPEN', 'COMPLETING')`,
    [mediaId, oldUploadId, newUploadId],
  );
  return res.rowCount === 1;
}

export async function liveUploadIds(db: Queryable, uploadIds: string[]): Promise<Set<string>> {
  const { rows } = await db.query<{ upload_id: string }>(
    `SELECT upload_id FROM multipart_uploads WHERE upload_id = ANY($1) AND state IN ('OPEN', 'COMPLETING')`,
    [uploadIds],
  );
  return new Set(rows.map((r) => r.upload_id));
}
