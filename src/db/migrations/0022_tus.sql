-- tus 1.0 uploads (src/media/tus.ts): the durable offset of a media session fed by tus PATCHes.
-- upload_offset is committed only after the bytes before it are fsynced (local staging file) or
-- stored as parts, so HEAD answers it truthfully across a restart. On stores that are not local
-- files the bytes go to the store as multipart parts of `part_size`; `parts` lists them.
CREATE TABLE tus_uploads (
  media_id        uuid PRIMARY KEY REFERENCES media (id) ON DELETE CASCADE,
  upload_offset   bigint NOT NULL DEFAULT 0 CHECK (upload_offset >= 0),
  -- Upload-Metadata as the client sent it (answered back on HEAD).
  metadata        text,
  -- 0: one staging file published whole (local store); else the size of every part but the last.
  part_size       bigint NOT NULL DEFAULT 0,
  store_upload_id text,
  parts           jsonb NOT NULL DEFAULT '[]'::jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
