import type { Logger } from 'pino';
import type { Pool } from '../db/pool.ts';
import { NO_METRICS, type Metrics } from '../metrics/port.ts';
import type { ObjectStore } from '../storage/types.ts';
import { failure } from '../media/lifecycle.ts';
import * as mrepo from '../media/multipart-repo.ts';
import { failUpload } from '../media/transitions.ts';
import { startPeriodic } from './periodic.ts';

export interface SweepReport {
  /** PENDING sessions past their expiry, now FAILED (upload_expired). */
  expiredSessions: number;
  /** Store multipart uploads aborted (of expired sessions, or with no live row). */
  abortedUploads: number;
  /** Objects with no row, older than the grace period, removed. */
  orphansRemoved: number;
}

export interface SweepOptions {
  orphanGraceSeconds: number;
  now?: Date;
}

const BATCH = 200;

/**
 * Reconciles the database and the store (invariant: no object without a row past the grace
 * period, no multipart upload outliving its session):
 *  1. PENDING media past `upload_expires_at` → FAILED (upload_expired); their multipart upload is
 *     aborted, a single upload's stray object removed.
 *  2. Store multipart uploads no OPEN/COMPLETING row wants, older than the grace → aborted.
 *  3. Objects whose key no row references (any text column named `key` or `*_key`; a DELETED
 *     media's keys — its original, and rows with its `media_id` — do not count), older than the
 *     grace → removed.
 */
export async function sweep(
  pool: Pool,
  store: ObjectStore,
  opts: SweepOptions,
  logger: Logger,
): Promise<SweepReport> {
  const now = opts.now ?? new Date();
  const graceCutoff = new Date(now.getTime() - opts.orphanGraceSeconds * 1000);
  const report: SweepReport = { expiredSessions: 0, abortedUploads: 0, orphansRemoved: 0 };

  // 1. expired sessions
  for (;;) {
    const { rows } = await pool.query<{
      id: string;
      storage_key: string;
      upload_id: string | null;
      state: mrepo.MultipartState | null;
    }>(
      `SELECT m.id, m.storage_key, mu.upload_id, mu.state
         FROM media m LEFT JOIN multipart_uploads mu ON mu.media_id = m.id
        WHERE m.status = 'PENDING' AND m.upload_expires_at < $1
          AND (mu.state IS NULL OR mu.state <> 'COMPLETING' OR mu.updated_at < $1::timestamptz - interval '10 minutes')
        ORDER BY m.upload_expires_at LIMIT $2`,
      [now, BATCH],
    );
    if (rows.length === 0) break;
    for (const r of rows) {
      if (r.upload_id !== null) await mrepo.setState(pool, r.id, ['OPEN', 'COMPLETING'], 'ABORTED');
      const failed = await failUpload(pool, r.id, failure('upload_expired'));
      if (!failed) continue; // completed in the meantime
      report.expiredSessions++;
      if (r.upload_id !== null) {
        await store.abortMultipart(r.storage_key, r.upload_id);
        report.abortedUploads++;
      } else {
        await store.delete(r.storage_key);
      }
    }
    if (rows.length < BATCH) break;
  }

  // 2. multipart uploads nobody wants
  let batch: { key: string; uploadId: string; initiated: Date }[] = [];
  const flushUploads = async () => {
    const live = await mrepo.liveUploadIds(
      pool,
      batch.map((u) => u.uploadId),
    );
    for (const u of batch) {
      if (live.has(u.uploadId) || u.initiated > graceCutoff) continue;
      await store.abortMultipart(u.key, u.uploadId);
      report.abortedUploads++;
    }
    batch = [];
  };
  for await (const u of store.listMultipartUploads()) {
    batch.push(u);
    if (batch.length >= BATCH) await flushUploads();
  }
  if (batch.length > 0) await flushUploads();

  // 3. orphan objects
  const columns = await keyColumns(pool);
  for await (const page of store.listObjects()) {
    const old = page.filter((o) => o.lastModified <= graceCutoff && o.key !== '');
    if (old.length === 0) continue;
    const keys = old.map((o) => o.key);
    const known = new Set<string>();
    for (const { table, column, mediaId } of columns) {
      // A DELETED media holds nothing any more: neither its original nor the objects of rows
      // that belong to it (variants, HLS), should removing them at delete time have failed.
      const live =
        table === '"media"'
          ? ` AND status <> 'DELETED'`
          : mediaId
            ? ` AND NOT EXISTS (SELECT 1 FROM media m WHERE m.id = ${table}.media_id AND m.status = 'DELETED')`
            : '';
      const { rows } = await pool.query<{ k: string }>(
        `SELECT ${column} AS k FROM ${table} WHERE ${column} = ANY($1)${live}`,
        [keys],
      );
      for (const r of rows) known.add(r.k);
    }
    for (const key of keys) {
      if (known.has(key)) continue;
      await store.delete(key);
      report.orphansRemoved++;
      logger.info({ key }, 'removed an object no row references');
    }
  }
  return report;
}

/**
 * Every (table, column) that may reference an object: text columns named `key` or `*_key`
 * (media.storage_key, media_variants.key, media_renditions.playlist_key, media_hls_objects.storage_key …).
 * Deliberately broad: a false match only keeps an object, a missed column would delete live ones.
 */
export async function keyColumns(pool: Pool): Promise<{ table: string; column: string; mediaId: boolean }[]> {
  const { rows } = await pool.query<{ table_name: string; column_name: string; media_id: boolean }>(
    `SELECT c.table_name, c.column_name,
            EXISTS (SELECT 1 FROM information_schema.columns m
                     WHERE m.table_schema = c.table_schema AND m.table_name = c.table_name
                       AND m.column_name = 'media_id') AS media_id
       FROM information_schema.columns c
      WHERE c.table_schema = current_schema() AND c.data_type = 'text'
        AND (c.column_name = 'key' OR c.column_name LIKE '%!_key' ESCAPE '!')
        AND c.table_name <> 'multipart_uploads'`,
  );
  const q = (id: string) => `"${id.replaceAll('"', '""')}"`;
  return rows.map((r) => ({ table: q(r.table_name), column: q(r.column_name), mediaId: r.media_id }));
}

/** Runs `sweep` every `intervalSeconds` (never two at once); returns a stop function. */
export function startSweeper(
  pool: Pool,
  store: ObjectStore,
  opts: { intervalSeconds: number; orphanGraceSeconds: number },
  logger: Logger,
  metrics: Metrics = NO_METRICS,
): () => Promise<void> {
  return startPeriodic(
    'storage sweep',
    opts.intervalSeconds,
    async () => {
      const r = await sweep(pool, store, opts, logger);
      for (let i = 0; i < r.expiredSessions; i++) metrics.uploadFailed(store.backend, 'upload_expired');
      if (r.expiredSessions + r.abortedUploads + r.orphansRemoved > 0) logger.info(r, 'storage sweep');
    },
    logger,
    pool,
  );
}
