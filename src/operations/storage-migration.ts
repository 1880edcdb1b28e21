import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { withTransaction, type Pool, type Queryable } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { hlsContentType, variantContentType, variantKeySha256 } from '../media/layout.ts';
import { hashStoredObject } from '../storage/inspect.ts';
import type { ObjectStore } from '../storage/types.ts';

export interface MigrationReport {
  /** Live media on the source backend (UPLOADED, PROCESSING, READY, FAILED). */
  total: number;
  /** Media whose every object is on the target, verified, and whose row now points there. */
  copied: number;
  /** Objects streamed to the target (in a dry run: that would be). */
  objects: number;
  /** Bytes streamed to the target (in a dry run: that would be). */
  bytes: number;
  /** Objects already on the target with the right size and sha256 (an earlier run's): not copied. */
  present: number;
  /** Media whose original is on neither backend: left as they are. */
  missing: number;
  /** Media with an object that could not be copied or verified: left on the source. */
  failed: number;
  /**
   * PENDING rows (uploads not completed yet): never switched — completion records the store it
   * finds the bytes in. An original already uploaded whole to the source is copied to the target,
   * so a session completed after the switch finds its bytes there.
   */
  pending: number;
  /** Of those, originals copied to the target (in a dry run: that would be). */
  pendingCopied: number;
  /** Media a live worker is processing right now: left on the source; rerun after it finishes. */
  busy: number;
  /** Media already on the target that `recheck` looked at (objects it lacked were copied). */
  rechecked: number;
  /** Stopped by the signal before every media was done; rerun to finish. */
  interrupted: boolean;
}

export interface MigrationOptions {
  dryRun: boolean;
  progress: (line: string) => void;
  /** Stops the run between objects: the media in hand is not switched, in-flight copies finish. */
  signal?: AbortSignal | undefined;
  /**
   * Also look at media already on the target and copy whatever object they lack there (rows a
   * run of the originals-only migration switched; variants a worker on the old backend wrote
   * after the switch). Reads every object of those media on the target.
   */
  recheck?: boolean | undefined;
  /** Objects of one media copied at once (HLS ladders are many small objects). Default 4. */
  parallelism?: number | undefined;
}

interface MediaRow {
  id: string;
  status: string;
  media_type: string;
  storage_backend: string;
  storage_key: string;
  mime_type: string;
  bytes: number;
  sha256: string | null;
  content_sha256: string | null;
  hls_master_key: string | null;
}

type Kind = 'original' | 'variant' | 'hls';

/** One object a media references, with what we know its bytes must be. */
export interface PlannedObject {
  kind: Kind;
  key: string;
  contentType: string;
  /** Size recorded in the database (originals: declared and checked at completion). */
  bytes: number | null;
  /** Lower-case hex SHA-256, when known (original's content_sha256; a variant key's hash). */
  sha256: string | null;
}

const MEDIA_COLUMNS = `id, status, media_type, storage_backend, storage_key, mime_type, bytes::float8 AS bytes,
  sha256, content_sha256, hls_master_key`;

/**
 * Every object a live media references: its original, its image variants (posters of videos
 * included) and every object of its HLS run (master, playlists, init and media segments).
 */
export async function mediaObjects(db: Queryable, m: MediaRow): Promise<PlannedObject[]> {
  const out = new Map<string, PlannedObject>();
  const add = (o: PlannedObject) => {
    if (!out.has(o.key)) out.set(o.key, o);
  };
  add({
    kind: 'original',
    key: m.storage_key,
    contentType: m.mime_type,
    bytes: m.bytes,
    sha256: m.content_sha256 ?? m.sha256,
  });
  const variants = await db.query<{ key: string; format: string; bytes: number }>(
    'SELECT key, format, bytes::float8 AS bytes FROM media_variants WHERE media_id = $1 ORDER BY name',
    [m.id],
  );
  for (const v of variants.rows) {
    add({
      kind: 'variant',
      key: v.key,
      contentType: variantContentType(v.format),
      bytes: v.bytes,
      sha256: variantKeySha256(v.key),
    });
  }
  const hls = await db.query<{ key: string; bytes: number | null }>(
    `SELECT storage_key AS key, bytes::float8 AS bytes FROM media_hls_objects WHERE media_id = $1
     UNION
     SELECT playlist_key, NULL FROM media_renditions r WHERE media_id = $1
       AND NOT EXISTS (SELECT 1 FROM media_hls_objects o WHERE o.media_id = $1 AND o.storage_key = r.playlist_key)
     ORDER BY 1`,
    [m.id],
  );
  const hlsKeys = hls.rows.map((r) => ({ key: r.key, bytes: r.bytes }));
  if (m.hls_master_key !== null && !hlsKeys.some((h) => h.key === m.hls_master_key))
    hlsKeys.unshift({ key: m.hls_master_key, bytes: null });
  for (const h of hlsKeys) {
    add({ kind: 'hls', key: h.key, contentType: hlsContentType(h.key), bytes: h.bytes, sha256: null });
  }
  return [...out.values()];
}

const fingerprint = (objects: PlannedObject[]) =>
  JSON.stringify(objects.map((o) => [o.key, o.bytes, o.sha256]).sort());

/** A worker connection that is still alive holds a claim on this media (it is being processed). */
async function isBusy(db: Queryable, mediaId: string): Promise<boolean> {
  const { rows } = await db.query<{ busy: boolean }>(
    `SELECT EXISTS (
       SELECT 1 FROM processing_claims c
         JOIN pg_stat_activity a ON a.pid = c.backend_pid AND a.backend_start = c.backend_start
        WHERE c.media_id = $1) AS busy`,
    [mediaId],
  );
  return rows[0]?.busy ?? false;
}

class MissingObject extends Error {}
class Interrupted extends Error {}

type Outcome = { key: string; copied: false } | { key: string; copied: true; size: number; sha256: string };

/**
 * Copies every object each live media of `from` references to `to` — original, variants, HLS
 * objects — then switches the media row to `to` in one transaction. Per object: skip it when the
 * target already has it with the recorded size (and sha256 where known, hashed on the target);
 * otherwise stream it (the target checks length and sha256 as it receives, nothing visible on
 * failure) and HEAD it on the target. The switch (`storage_backend`/`storage_uri`) happens only
 * when every object is there: it locks the row and re-reads its objects, and does nothing when the
 * media changed meanwhile (reprocessed, deleted). Until then the row, and every read, stays on the
 * source, so an interrupted or failed media is fully readable there and a rerun finishes it
 * (copying only what is missing). Source objects are kept.
 */
export async function migrateStorage(
  pool: Pool,
  from: ObjectStore,
  to: ObjectStore,
  opts: MigrationOptions,
): Promise<MigrationReport> {
  if (from.backend === to.backend) throw new Error(`source and target are both ${from.backend}`);
  // Dry runs too: "would copy N objects" to a bucket that does not exist helps nobody.
  await probeWritable(to);
  const parallelism = Math.max(1, opts.parallelism ?? 4);
  const { rows } = await pool.query<MediaRow>(
    `SELECT ${MEDIA_COLUMNS} FROM media
      WHERE (storage_backend = $1 OR ($2 AND storage_backend = $3))
        AND status IN ('UPLOADED', 'PROCESSING', 'READY', 'FAILED')
      ORDER BY storage_backend = $3, created_at, id`,
    [from.backend, opts.recheck === true, to.backend],
  );
  const pending = await pool.query<MediaRow>(
    `SELECT ${MEDIA_COLUMNS} FROM media WHERE storage_backend = $1 AND status = 'PENDING' ORDER BY created_at, id`,
    [from.backend],
  );
  const report: MigrationReport = {
    total: rows.filter((r) => r.storage_backend === from.backend).length,
    copied: 0,
    objects: 0,
    bytes: 0,
    present: 0,
    missing: 0,
    failed: 0,
    pending: pending.rows.length,
    pendingCopied: 0,
    busy: 0,
    rechecked: 0,
    interrupted: false,
  };
  const width = String(rows.length).length;

  /** Is `o` on the target already, as recorded? */
  const onTarget = async (o: PlannedObject, sourceSize?: number): Promise<boolean> => {
    const stat = await to.stat(o.key);
    if (!stat) return false;
    const size = o.bytes ?? sourceSize;
    if (size === undefined || stat.size !== size) return false;
    return o.sha256 === null || (await hashStoredObject(to, o.key)) === o.sha256;
  };

  /** Makes `o` present and verified on the target (in a dry run: says what it would do). */
  const ensure = async (o: PlannedObject): Promise<Outcome> => {
    const outcome = await copyIfNeeded(o);
    // Originals carry the archive rule's tag on the target too (S3 with S3_ARCHIVE_AFTER_DAYS;
    // a no-op otherwise); tagged again on a rerun, so none is left without it.
    if (o.kind === 'original' && !opts.dryRun) await to.archive?.markOriginal(o.key);
    return outcome;
  };

  const copyIfNeeded = async (o: PlannedObject): Promise<Outcome> => {
    if (o.bytes !== null && (await onTarget(o))) return { key: o.key, copied: false };
    const source = await from.stat(o.key);
    if (!source) throw new MissingObject(`${o.kind} ${o.key} is missing on ${from.backend}`);
    if (o.bytes === null && (await onTarget(o, source.size))) return { key: o.key, copied: false };
    if (o.bytes !== null && source.size !== o.bytes) {
      throw new Error(`${o.kind} ${o.key} has ${source.size} bytes on ${from.backend}, ${o.bytes} recorded`);
    }
    if (opts.dryRun) return { key: o.key, copied: true, size: source.size, sha256: '' };
    const stream = await from.get(o.key);
    if (!stream) throw new MissingObject(`${o.kind} ${o.key} vanished from ${from.backend} while migrating`);
    let put;
    try {
      put = await to.put(o.key, stream, {
        contentType: o.contentType,
        bytes: source.size,
        sha256: o.sha256 ?? undefined,
      });
    } catch (err) {
      stream.destroy();
      throw new Error(`${describe(err)} [${o.kind} ${o.key}]`, { cause: err });
    }
    const check = await to.stat(o.key);
    if (check?.size !== source.size)
      throw new Error(`${o.kind} ${o.key}: target has ${check?.size ?? 'no'} bytes, source ${source.size}`);
    return { key: o.key, copied: true, size: put.size, sha256: put.sha256 };
  };

  /** `ensure` over every object, `parallelism` at a time; the first failure stops the rest. */
  const ensureAll = async (objects: PlannedObject[]): Promise<Outcome[]> => {
    const results: Outcome[] = [];
    let next = 0;
    let failure: Error | undefined;
    const lane = async () => {
      while (failure === undefined && next < objects.length) {
        if (opts.signal?.aborted) {
          failure ??= new Interrupted('interrupted');
          return;
        }
        const o = objects[next++]!;
        try {
          const outcome = await ensure(o);
          // Counted as they happen: an interrupted or failed media's copies show in the report.
          if (outcome.copied) {
            report.objects++;
            report.bytes += outcome.size;
          } else {
            report.present++;
          }
          results.push(outcome);
        } catch (err) {
          failure ??= err instanceof Error ? err : new Error(String(err));
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(parallelism, objects.length) }, lane));
    if (failure !== undefined) throw failure;
    return results;
  };

  let i = 0;
  for (const row of rows) {
    i++;
    const tag = `[${String(i).padStart(width)}/${rows.length}] ${row.id} ${row.media_type} ${row.status}`;
    if (opts.signal?.aborted) {
      report.interrupted = true;
      break;
    }
    const recheck = row.storage_backend === to.backend;
    try {
      if (!recheck && (await isBusy(pool, row.id))) {
        report.busy++;
        opts.progress(`${tag} being processed by a worker: left on ${from.backend}, rerun later`);
        continue;
      }
      const objects = await mediaObjects(pool, row);
      const original = objects[0]!;
      if (!(await from.stat(original.key)) && !(await onTarget(original))) {
        report.missing++;
        opts.progress(`${tag} original missing on ${from.backend}: left as it is`);
        continue;
      }
      const outcomes = await ensureAll(objects);
      const copied = outcomes.filter((o) => o.copied);
      const bytes = copied.reduce((n, o) => n + o.size, 0);
      const counts = `${copied.length} object${copied.length === 1 ? '' : 's'} (${bytes} bytes)`;
      const present = outcomes.length - copied.length;
      const already = present > 0 ? `, ${present} already on ${to.backend}` : '';
      if (recheck) {
        report.rechecked++;
        opts.progress(
          `${tag} already on ${to.backend}: ${opts.dryRun ? 'would copy' : 'copied'} ${counts}${already}`,
        );
        continue;
      }
      if (opts.dryRun) {
        opts.progress(`${tag} would copy ${counts}${already}`);
        continue;
      }
      const originalPut = copied.find((o) => o.key === original.key);
      const switched = await withTransaction(pool, async (tx) => {
        const locked = await tx.query<MediaRow>(
          `SELECT ${MEDIA_COLUMNS} FROM media WHERE id = $1 FOR UPDATE`,
          [row.id],
        );
        const now = locked.rows[0];
        if (
          now?.storage_backend !== from.backend ||
          now.storage_key !== row.storage_key ||
          now.status === 'DELETED' ||
          now.status === 'PENDING' ||
          fingerprint(await mediaObjects(tx, now)) !== fingerprint(objects) ||
          (await isBusy(tx, row.id))
        ) {
          return false;
        }
        await tx.query(
          `UPDATE media SET storage_backend = $2, storage_uri = $3, updated_at = now(),
             content_sha256 = COALESCE(content_sha256, $4)
           WHERE id = $1`,
          [row.id, to.backend, to.uri(row.storage_key), originalPut?.copied ? originalPut.sha256 : null],
        );
        return true;
      });
      if (!switched) {
        report.failed++;
        opts.progress(`${tag} changed while copying (reprocessed or deleted?): not switched, rerun`);
        continue;
      }
      report.copied++;
      opts.progress(`${tag} copied ${counts}${already}, verified; switched to ${to.backend}`);
    } catch (err) {
      if (err instanceof Interrupted) {
        report.interrupted = true;
        opts.progress(`${tag} interrupted: left on ${from.backend}, rerun to finish`);
        break;
      }
      report.failed++;
      const where = recheck ? `it stays on ${to.backend}` : `the row still points at ${from.backend}`;
      opts.progress(`${tag} ${opts.dryRun ? 'would FAIL' : 'FAILED'} (${describe(err)}); ${where}`);
    }
  }
  // Sessions still PENDING: their row is not switched (a client may still be sending bytes, and
  // completion records the store it verifies the bytes in). An original already uploaded whole is
  // copied, so that completing the session after the switch finds it on the target.
  for (const row of report.interrupted ? [] : pending.rows) {
    if (opts.signal?.aborted) {
      report.interrupted = true;
      break;
    }
    const tag = `[pending] ${row.id} ${row.media_type}`;
    try {
      const source = await from.stat(row.storage_key);
      if (source?.size !== row.bytes) {
        opts.progress(`${tag} upload not complete yet: its bytes will go to the store the server runs with`);
        continue;
      }
      const [original] = await mediaObjects(pool, { ...row, hls_master_key: null });
      const outcome = await ensure(original!);
      if (outcome.copied) {
        report.pendingCopied++;
        report.objects++;
        report.bytes += outcome.size;
      } else {
        report.present++;
      }
      opts.progress(
        `${tag} upload not completed: original ${
          outcome.copied ? (opts.dryRun ? 'would be copied' : 'copied') : 'already'
        } to ${to.backend}; completing it after the switch records ${to.backend}`,
      );
    } catch (err) {
      report.failed++;
      opts.progress(`${tag} ${opts.dryRun ? 'would FAIL' : 'FAILED'} (${describe(err)})`);
    }
  }
  return report;
}

export class StoreNotWritableError extends Error {
  override readonly name = 'StoreNotWritableError';
}

/**
 * Checks that `store` can be written to: puts a small probe object, reads its size back and
 * deletes it. Throws a readable error naming what failed (a bucket that does not exist, missing
 * permissions, an unreachable endpoint).
 */
export async function probeWritable(store: ObjectStore): Promise<void> {
  const key = `mediary-probe-${randomUUID()}`;
  const body = Buffer.from('mediary storage probe\n');
  try {
    await store.put(key, Readable.from([body]), { contentType: 'text/plain', bytes: body.length });
    const stat = await store.stat(key);
    if (stat?.size !== body.length) throw new Error('a probe object written could not be read back');
  } catch (err) {
    throw new StoreNotWritableError(
      `the ${store.backend} store (${store.uri('probe')}) is not writable: ${describe(err)}`,
      { cause: err },
    );
  } finally {
    await store.delete(key).catch(() => undefined);
  }
}

function describe(err: unknown): string {
  if (err instanceof AppError) return `${err.code}: ${err.message}`;
  if (err instanceof Error) {
    // The AWS SDK names the S3 error code (NoSuchBucket, AccessDenied) in `name`; its message is
    // sometimes only "UnknownError".
    const named = err.name !== 'Error' && !err.message.includes(err.name);
    return named ? `${err.name}: ${err.message}` : err.message;
  }
  return String(err);
}
