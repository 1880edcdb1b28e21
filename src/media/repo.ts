import { statement } from '../db/named.ts';
import type { Queryable } from '../db/pool.ts';
import type { MediaType } from './catalog.ts';
import type { MediaStatus } from './lifecycle.ts';

/** Who created an upload session (0007_uploaded_by.sql). */
export type Uploader = 'device' | 'user';

/** What a media is for (0014_posts.sql, 0030_profiles.sql); the table is src/media/purposes.ts. */
export type { MediaPurpose } from './purposes.ts';
import type { MediaPurpose } from './purposes.ts';

export { LISTABLE_STATUSES, type MediaStatus } from './lifecycle.ts';

export interface MediaRow {
  id: string;
  owner_user_id: string | null;
  device_id: string | null;
  /** Owner of the uploading device, joined in for access checks. */
  device_owner_user_id: string | null;
  /**
   * Read with the row (the upload path's checks then need no statement of their own): the device
   * exists and is not revoked; a multipart upload was begun for this media. Absent on rows that
   * did not come from the full SELECT (an INSERT's RETURNING): the checks then ask the database.
   */
  device_active?: boolean;
  has_multipart?: boolean;
  /** Who created the session: the device itself, or a user (who may have named a device they own). */
  uploaded_by: Uploader;
  /** What it is for: `post` media no post takes within the grace period are removed (0014). */
  purpose: MediaPurpose;
  camera_id: string | null;
  message_id: string | null;
  idempotency_key: string | null;
  captured_at: Date;
  reason: string | null;
  media_type: MediaType;
  mime_type: string;
  detected_mime_type: string | null;
  file_name: string;
  bytes: number;
  sha256: string | null;
  content_sha256: string | null;
  content_etag: string | null;
  storage_backend: string;
  storage_key: string;
  storage_uri: string;
  status: MediaStatus;
  width: number | null;
  height: number | null;
  duration_ms: number | null;
  metadata: Record<string, unknown>;
  error: { code: string; message: string } | null;
  upload_expires_at: Date;
  uploaded_at: Date | null;
  created_at: Date;
  updated_at: Date;
  /** Keyset cursor component: captured_at as Postgres text (microsecond precision). */
  captured_at_text: string;
  // ---- processing (0002_processing.sql) ----
  processing_attempts: number;
  processing_progress: number;
  processing_last_error: { code: string; message: string; at?: string } | null;
  processed_at: Date | null;
  /** EXIF GPS: for the owner only. */
  gps: { latitude: number; longitude: number; altitude?: number } | null;
  placeholder: string | null;
  /** Largest first. */
  variants: VariantRow[];
  // ---- video (0004_video.sql) ----
  /** Master playlist of the HLS ladder; its directory is the prefix playback tokens are scoped to. */
  hls_master_key: string | null;
  /** Smallest first. */
  renditions: RenditionRow[];
}

/** A media row's own columns (what `RETURNING` the {@link MEDIA_COLUMNS} gives), without the joins. */
export type MediaRecord = Omit<
  MediaRow,
  'device_owner_user_id' | 'captured_at_text' | 'variants' | 'renditions' | 'device_active' | 'has_multipart'
>;

export interface RenditionRow {
  name: string;
  width: number;
  height: number;
  bitrate: number;
  codecs: string;
  playlist_key: string;
}

export interface VariantRow {
  name: string;
  format: string;
  key: string;
  /**
   * Lower-case hex SHA-256 of the variant's bytes, read from its content-addressed key
   * (`variants/<mediaId>/<sha256>.<fmt>`, layout `variantKey`); null only for a key of another
   * shape, which Mediary never writes.
   */
  sha256: string | null;
  width: number;
  height: number;
  bytes: number;
}

export interface NewMedia {
  id: string;
  ownerUserId: string | null;
  deviceId: string | null;
  cameraId: string | null;
  messageId: string | null;
  idempotencyKey: string | null;
  capturedAt: Date;
  reason: string | null;
  mediaType: MediaType;
  mimeType: string;
  fileName: string;
  bytes: number;
  sha256: string | null;
  storageBackend: string;
  storageKey: string;
  storageUri: string;
  uploadExpiresAt: Date;
  uploadedBy: Uploader;
  purpose: MediaPurpose;
  /** The uploading device's owner as the caller resolved it (null without a device). */
  deviceOwnerUserId: string | null;
}

/**
 * The media table's columns, spelled out for the prepared statements: a prepared `RETURNING media.*`
 * fails ("cached plan must not change result type") as soon as a migration adds a column while
 * servers run (a rolling deploy); an explicit list keeps its result type. A test checks the list
 * against the table, so a new column is not forgotten.
 */
export const MEDIA_COLUMNS = [
  'id',
  'owner_user_id',
  'device_id',
  'camera_id',
  'message_id',
  'idempotency_key',
  'captured_at',
  'reason',
  'media_type',
  'mime_type',
  'detected_mime_type',
  'file_name',
  'bytes',
  'sha256',
  'content_sha256',
  'content_etag',
  'storage_backend',
  'storage_key',
  'storage_uri',
  'status',
  'width',
  'height',
  'duration_ms',
  'metadata',
  'error',
  'upload_expires_at',
  'uploaded_at',
  'deleted_at',
  'created_at',
  'updated_at',
  'processing_attempts',
  'processing_progress',
  'processing_last_error',
  'processed_at',
  'gps',
  'placeholder',
  'hls_master_key',
  'uploaded_by',
  'purpose',
] as const;

/**
 * A media row as the API reads it, with the joins. The columns are spelled out (not `m.*`) so
 * {@link findMedia} can be a prepared statement that survives a column added under running servers.
 */
const SELECT = `SELECT ${MEDIA_COLUMNS.map((c) => `m.${c}`).join(', ')}, d.owner_user_id AS device_owner_user_id, m.captured_at::text AS captured_at_text,
    (d.id IS NOT NULL AND d.revoked_at IS NULL) AS device_active,
    EXISTS (SELECT 1 FROM multipart_uploads mu WHERE mu.media_id = m.id) AS has_multipart,
    COALESCE((SELECT json_agg(json_build_object('name', v.name, 'format', v.format, 'key', v.key,
        'sha256', substring(v.key from '/([0-9a-f]{64})\\.[a-z0-9]+$'),
        'width', v.width, 'height', v.height, 'bytes', v.bytes) ORDER BY v.width * v.height DESC, v.name)
      FROM media_variants v WHERE v.media_id = m.id), '[]'::json) AS variants,
    COALESCE((SELECT json_agg(json_build_object('name', r.name, 'width', r.width, 'height', r.height,
        'bitrate', r.bitrate, 'codecs', r.codecs, 'playlist_key', r.playlist_key) ORDER BY r.width * r.height, r.name)
      FROM media_renditions r WHERE r.media_id = m.id), '[]'::json) AS renditions
  FROM media m LEFT JOIN devices d ON d.id = m.device_id`;

const INSERT_MEDIA = `INSERT INTO media (id, owner_user_id, device_id, camera_id, message_id, idempotency_key, captured_at, reason,
     media_type, mime_type, file_name, bytes, sha256, storage_backend, storage_key, storage_uri, upload_expires_at,
     uploaded_by, purpose)
   VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$19,$20)
   ON CONFLICT DO NOTHING
   RETURNING ${MEDIA_COLUMNS.map((c) => `media.${c}`).join(', ')}, $18::text AS device_owner_user_id,
     media.captured_at::text AS captured_at_text, '[]'::json AS variants, '[]'::json AS renditions`;

/**
 * Inserts and returns the new row exactly as `findMedia` would read it (one round trip, no re-read:
 * a new row has no variants or renditions yet), or undefined when a unique constraint (an
 * idempotency key, the storage key) already holds a row. `prepared`: as a named statement, planned
 * once per connection (session creation is the hottest write).
 */
export async function insertMedia(
  db: Queryable,
  m: NewMedia,
  { prepared = false }: { prepared?: boolean } = {},
): Promise<MediaRow | undefined> {
  const values = [
    m.id,
    m.ownerUserId,
    m.deviceId,
    m.cameraId,
    m.messageId,
    m.idempotencyKey,
    m.capturedAt,
    m.reason,
    m.mediaType,
    m.mimeType,
    m.fileName,
    m.bytes,
    m.sha256,
    m.storageBackend,
    m.storageKey,
    m.storageUri,
    m.uploadExpiresAt,
    m.deviceId === null ? null : m.deviceOwnerUserId,
    m.uploadedBy,
    m.purpose,
  ];
  const { rows } = await db.query<MediaRow>(
    statement(INSERT_MEDIA, values, prepared, 'mediary-insert-media'),
  );
  return rows[0];
}

const FIND_MEDIA = `${SELECT} WHERE m.id = $1`;

/**
 * One media row by id. `prepared`: as a named statement, parsed and planned once per connection
 * (DATABASE_PREPARED_STATEMENTS; the API's reads and an upload's completion use it): measured
 * 2026-12-03, 630–730 µs of Postgres CPU per call unnamed (planning the two json_agg subqueries),
 * 80–120 µs named.
 */
export async function findMedia(
  db: Queryable,
  id: string,
  { prepared = false }: { prepared?: boolean } = {},
): Promise<MediaRow | undefined> {
  const values = [id];
  const { rows } = await db.query<MediaRow>(statement(FIND_MEDIA, values, prepared, 'mediary-find-media'));
  return rows[0];
}

/** The rows of `ids` that exist, in no particular order. */
export async function findMediaMany(db: Queryable, ids: readonly string[]): Promise<MediaRow[]> {
  if (ids.length === 0) return [];
  const { rows } = await db.query<MediaRow>(`${SELECT} WHERE m.id = ANY($1::uuid[])`, [ids]);
  return rows;
}

export async function findByDeviceMessage(
  db: Queryable,
  deviceId: string,
  cameraId: string | null,
  messageId: string,
): Promise<MediaRow | undefined> {
  const { rows } = await db.query<MediaRow>(
    `${SELECT} WHERE m.device_id = $1 AND m.camera_id IS NOT DISTINCT FROM $2 AND m.message_id = $3`,
    [deviceId, cameraId, messageId],
  );
  return rows[0];
}

export async function findByIdempotencyKey(
  db: Queryable,
  userId: string,
  key: string,
): Promise<MediaRow | undefined> {
  const { rows } = await db.query<MediaRow>(
    `${SELECT} WHERE m.owner_user_id = $1 AND m.idempotency_key = $2 AND m.uploaded_by = 'user'`,
    [userId, key],
  );
  return rows[0];
}

/** Records the received object's hash; false when the media is no longer PENDING (nothing recorded). */
export async function recordUploadedContent(
  db: Queryable,
  id: string,
  sha256: string,
  etag: string,
): Promise<boolean> {
  const { rowCount } = await db.query(
    `UPDATE media SET content_sha256 = $2, content_etag = $3, updated_at = now() WHERE id = $1 AND status = 'PENDING'`,
    [id, sha256, etag],
  );
  return rowCount === 1;
}

/** NOTIFY channel (payload: the media id): a worker processing that media cancels the job. */
export const MEDIA_DELETED_CHANNEL = 'mediary_media_deleted';

export interface ListQuery {
  /**
   * A device's media (`forUser`: only that user's captures on it; `uploadedBy`: only what the
   * device or a user created), or a user's.
   */
  scope: { deviceId: string; forUser?: string; uploadedBy?: Uploader } | { ownerUserId: string };
  cameraId?: string | undefined;
  status?: MediaStatus | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  after?: { capturedAt: string; id: string } | undefined;
  limit: number;
}

/** Newest first by capture time, ties by id; keyset pagination on (captured_at, id). */
export async function listMedia(db: Queryable, q: ListQuery): Promise<MediaRow[]> {
  const where: string[] = [`m.status <> 'DELETED'`];
  const values: unknown[] = [];
  const add = (sql: string, value: unknown) => {
    values.push(value);
    where.push(sql.replace('?', `$${values.length}`));
  };
  if ('deviceId' in q.scope) {
    add('m.device_id = ?', q.scope.deviceId);
    // As privacy.owningUser: recorded at upload, else the device's owner (the caller, checked).
    if (q.scope.forUser !== undefined)
      add('(m.owner_user_id = ? OR m.owner_user_id IS NULL)', q.scope.forUser);
    if (q.scope.uploadedBy !== undefined) add('m.uploaded_by = ?', q.scope.uploadedBy);
  } else add('m.owner_user_id = ?', q.scope.ownerUserId);
  if (q.cameraId !== undefined) add('m.camera_id = ?', q.cameraId);
  if (q.status !== undefined) add('m.status = ?', q.status);
  if (q.since !== undefined) add('m.captured_at >= ?', q.since);
  if (q.until !== undefined) add('m.captured_at < ?', q.until);
  if (q.after !== undefined) {
    values.push(q.after.capturedAt, q.after.id);
    where.push(`(m.captured_at, m.id) < ($${values.length - 1}::timestamptz, $${values.length}::uuid)`);
  }
  values.push(q.limit);
  const { rows } = await db.query<MediaRow>(
    `${SELECT} WHERE ${where.join(' AND ')} ORDER BY m.captured_at DESC, m.id DESC LIMIT $${values.length}`,
    values,
  );
  return rows;
}

export async function deviceOwner(
  db: Queryable,
  deviceId: string,
): Promise<{ ownerUserId: string | null } | undefined> {
  const { rows } = await db.query<{ owner_user_id: string | null }>(
    'SELECT owner_user_id FROM devices WHERE id = $1 AND revoked_at IS NULL',
    [deviceId],
  );
  return rows[0] ? { ownerUserId: rows[0].owner_user_id } : undefined;
}

/** Whether the device exists and is not revoked. */
export async function deviceActive(db: Queryable, deviceId: string): Promise<boolean> {
  const { rows } = await db.query<{ active: boolean }>(
    'SELECT EXISTS (SELECT 1 FROM devices WHERE id = $1 AND revoked_at IS NULL) AS active',
    [deviceId],
  );
  return rows[0]?.active === true;
}

/** Every stored HLS object of a media (playlists and segments), for deletion. */
/** Every object derived from a media: its variants and its HLS objects. */
export async function derivedObjectKeys(db: Queryable, id: string): Promise<string[]> {
  const { rows } = await db.query<{ key: string }>(
    `SELECT key FROM media_variants WHERE media_id = $1
     UNION SELECT storage_key FROM media_hls_objects WHERE media_id = $1`,
    [id],
  );
  return rows.map((r) => r.key);
}

export async function hlsObjectKeys(db: Queryable, id: string): Promise<string[]> {
  const { rows } = await db.query<{ storage_key: string }>(
    'SELECT storage_key FROM media_hls_objects WHERE media_id = $1',
    [id],
  );
  return rows.map((r) => r.storage_key);
}

/** The usage key of an uploader (0016_usage.sql): the device itself, or the user. */
export const usageKey = (p: { kind: 'device'; deviceId: string } | { kind: 'user'; userId: string }) =>
  p.kind === 'device' ? `device:${p.deviceId}` : `user:${p.userId}`;

/** What an uploader holds now (kept by a trigger on media). */
export async function usageOf(
  db: Queryable,
  principal: string,
): Promise<{ storedBytes: number; openSessions: number }> {
  const { rows } = await db.query<{ stored_bytes: string; open_sessions: number }>(
    'SELECT stored_bytes::text, open_sessions FROM principal_usage WHERE principal = $1',
    [principal],
  );
  const r = rows[0];
  return { storedBytes: r ? Number(r.stored_bytes) : 0, openSessions: r?.open_sessions ?? 0 };
}
