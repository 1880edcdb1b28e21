/** SQL of the video job: READY with duration, renditions and the HLS objects, in one transaction. */
import type { Queryable } from '../db/pool.ts';
import * as repo from './repo.ts';

export interface RenditionRecord {
  name: string;
  width: number;
  height: number;
  bitrate: number;
  codecs: string;
  playlistKey: string;
}

export interface VideoReadyResult extends repo.ReadyResult {
  durationMs: number;
  hlsMasterKey: string;
  renditions: RenditionRecord[];
  /** Every object written under the run's prefix (with the master playlist). */
  hlsObjects: { key: string; bytes: number }[];
}

/** Must run inside a transaction: variants, renditions and objects replace the previous run's. */
export async function markVideoReady(tx: Queryable, id: string, r: VideoReadyResult): Promise<boolean> {
  if (!(await repo.markReady(tx, id, r))) return false;
  await tx.query('UPDATE media SET duration_ms = $2, hls_master_key = $3 WHERE id = $1', [
    id,
    r.durationMs,
    r.hlsMasterKey,
  ]);
  await tx.query('DELETE FROM media_renditions WHERE media_id = $1', [id]);
  for (const x of r.renditions) {
    await tx.query(
      `INSERT INTO media_renditions (media_id, name, width, height, bitrate, codecs, playlist_key)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [id, x.name, x.width, x.height, x.bitrate, x.codecs, x.playlistKey],
    );
  }
  await tx.query('DELETE FROM media_hls_objects WHERE media_id = $1', [id]);
  await tx.query(
    `INSERT INTO media_hls_objects (media_id, storage_key, bytes)
     SELECT $1, k, b FROM unnest($2::text[], $3::bigint[]) AS t(k, b)`,
    [id, r.hlsObjects.map((o) => o.key), r.hlsObjects.map((o) => o.bytes)],
  );
  return true;
}
