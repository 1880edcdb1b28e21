-- Devices: camera agents and other machines that upload as themselves.
CREATE TABLE devices (
  id            uuid PRIMARY KEY,
  name          text NOT NULL,
  owner_user_id text,
  key_hash      text NOT NULL UNIQUE,          -- sha256 of the API key; the key itself is never stored
  created_at    timestamptz NOT NULL DEFAULT now(),
  revoked_at    timestamptz
);
CREATE INDEX devices_owner_idx ON devices (owner_user_id) WHERE owner_user_id IS NOT NULL;

CREATE TYPE media_status AS ENUM ('PENDING', 'UPLOADED', 'PROCESSING', 'READY', 'FAILED', 'DELETED');

CREATE TABLE media (
  id                uuid PRIMARY KEY,
  owner_user_id     text,                       -- user who owns it (uploader, or the device's owner)
  device_id         uuid REFERENCES devices (id),
  camera_id         text,
  message_id        text,
  idempotency_key   text,                       -- users' Idempotency-Key header
  captured_at       timestamptz NOT NULL,
  reason            text,
  media_type        text NOT NULL CHECK (media_type IN ('image', 'video')),
  mime_type         text NOT NULL,              -- declared by the client, from the allow-list
  detected_mime_type text,                      -- sniffed from the bytes at completion
  file_name         text NOT NULL,              -- sanitised original name (metadata only, never in keys)
  bytes             bigint NOT NULL CHECK (bytes > 0),
  sha256            text,                       -- declared by the client (lower-case hex)
  content_sha256    text,                       -- computed from the stored bytes
  content_etag      text,                       -- store validator of the object content_sha256 was computed for
  storage_backend   text NOT NULL,
  storage_key       text NOT NULL,
  storage_uri       text NOT NULL,              -- local path or s3:// / gs:// URI, for operators only
  status            media_status NOT NULL DEFAULT 'PENDING',
  width             integer,
  height            integer,
  duration_ms       integer,
  metadata          jsonb NOT NULL DEFAULT '{}'::jsonb,
  error             jsonb,
  upload_expires_at timestamptz NOT NULL,
  uploaded_at       timestamptz,
  deleted_at        timestamptz,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  CHECK (device_id IS NOT NULL OR owner_user_id IS NOT NULL)
);

-- Device idempotency: one record per (device, camera, message). NULLS NOT DISTINCT keeps
-- a missing camera id from opening a hole.
CREATE UNIQUE INDEX media_device_message_uq ON media (device_id, camera_id, message_id) NULLS NOT DISTINCT
  WHERE message_id IS NOT NULL;
CREATE UNIQUE INDEX media_user_idempotency_uq ON media (owner_user_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL AND device_id IS NULL;
CREATE UNIQUE INDEX media_storage_key_uq ON media (storage_backend, storage_key);

-- "Latest per device by capture time", keyset-paginated on (captured_at, id).
CREATE INDEX media_device_latest_idx ON media (device_id, captured_at DESC, id DESC) WHERE status <> 'DELETED';
CREATE INDEX media_device_camera_latest_idx ON media (device_id, camera_id, captured_at DESC, id DESC) WHERE status <> 'DELETED';
CREATE INDEX media_owner_latest_idx ON media (owner_user_id, captured_at DESC, id DESC) WHERE status <> 'DELETED';
-- Sweeper: stale pending sessions.
CREATE INDEX media_pending_expiry_idx ON media (upload_expires_at) WHERE status = 'PENDING';
