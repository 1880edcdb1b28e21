import { withTransaction, type Pool } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import type { ObjectStore } from '../storage/types.ts';

export interface MigrationReport {
  /** Rows on the source backend with bytes to move. */
  total: number;
  copied: number;
  bytes: number;
  /** Row on the source backend, but its object is not there (left as it is). */
  missing: number;
  failed: number;
  /** PENDING rows: their upload is still going to the source backend; rerun after they finish. */
  pending: number;
}

interface Row {
  id: string;
  storage_key: string;
  mime_type: string;
  bytes: number;
  sha256: string | null;
  content_sha256: string | null;
}

/**
 * Copies every object of `from` to `to` and repoints each row, one at a time: stream the object
 * (the target checks length and sha256 as it receives), HEAD it on the target, then switch
 * `storage_backend`/`storage_uri` in a transaction that re-checks the row. The source object is
 * kept. A row switched is never selected again, so an interrupted run is simply run again.
 */
export async function migrateStorage(
  pool: Pool,
  from: ObjectStore,
  to: ObjectStore,
  opts: { dryRun: boolean; progress: (line: string) => void },
): Promise<MigrationReport> {
  if (from.backend === to.backend) throw new Error(`source and target are both ${from.backend}`);
  const { rows } = await pool.query<Row>(
    `SELECT id, storage_key, mime_type, bytes, sha256, content_sha256 FROM media
      WHERE storage_backend = $1 AND status IN ('UPLOADED', 'PROCESSING', 'READY', 'FAILED')
      ORDER BY created_at, id`,
    [from.backend],
  );
  const pending = await pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM media WHERE storage_backend = $1 AND status = 'PENDING'`,
    [from.backend],
  );
  const report: MigrationReport = {
    total: rows.length,
    copied: 0,
    bytes: 0,
    missing: 0,
    failed: 0,
    pending: pending.rows[0]?.n ?? 0,
  };
  const width = String(rows.length).length;
  let i = 0;
  for (const row of rows) {
    i++;
    const tag = `[${String(i).padStart(width)}/${rows.length}] ${row.id}`;
    const stat = await from.stat(row.storage_key);
    if (!stat) {
      report.missing++;
      opts.progress(`${tag} missing on ${from.backend}: left as it is`);
      continue;
    }
    if (opts.dryRun) {
      report.bytes += stat.size;
      opts.progress(`${tag} would copy ${stat.size} bytes`);
      continue;
    }
    try {
      const stream = await from.get(row.storage_key);
      if (!stream) throw new Error('object vanished while migrating');
      const expected = row.content_sha256 ?? row.sha256 ?? undefined;
      const put = await to.put(row.storage_key, stream, {
        contentType: row.mime_type,
        bytes: stat.size,
        sha256: expected,
      });
      const check = await to.stat(row.storage_key);
      if (check?.size !== stat.size)
        throw new Error(`target has ${check?.size ?? 'no'} bytes, source ${stat.size}`);
      const switched = await withTransaction(pool, async (tx) => {
        const res = await tx.query(
          `UPDATE media SET storage_backend = $3, storage_uri = $4, updated_at = now(),
             content_sha256 = COALESCE(content_sha256, $5)
           WHERE id = $1 AND storage_backend = $2 AND storage_key = $6 AND status <> 'DELETED'`,
          [row.id, from.backend, to.backend, to.uri(row.storage_key), put.sha256, row.storage_key],
        );
        return res.rowCount === 1;
      });
      if (!switched) {
        opts.progress(`${tag} changed while copying (deleted?): not switched`);
        continue;
      }
      report.copied++;
      report.bytes += put.size;
      opts.progress(`${tag} copied ${put.size} bytes, sha256 ${put.sha256.slice(0, 12)}… verified`);
    } catch (err) {
      report.failed++;
      const why = err instanceof AppError ? `${err.code}: ${err.message}` : String(err);
      opts.progress(`${tag} FAILED (${why}); the row still points at ${from.backend}`);
    }
  }
  return report;
}
