-- Multipart uploads: one row per media that uses the multipart protocol (bytes above the
-- threshold). The store keeps the parts (S3: the multipart upload; local: temporary part files);
-- this row remembers which store upload belongs to the media and the part plan the URLs follow.
CREATE TABLE multipart_uploads (
  media_id        uuid PRIMARY KEY REFERENCES media (id),
  upload_id       text NOT NULL,                 -- the store's multipart upload id
  storage_backend text NOT NULL,
  storage_key     text NOT NULL,
  part_size       bigint NOT NULL CHECK (part_size > 0),
  part_count      integer NOT NULL CHECK (part_count BETWEEN 1 AND 10000),
  -- OPEN → COMPLETING (one request joins the parts) → COMPLETED; or ABORTED (cancel, sweeper)
  state           text NOT NULL DEFAULT 'OPEN' CHECK (state IN ('OPEN', 'COMPLETING', 'COMPLETED', 'ABORTED')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Sweeper: "is this store upload still wanted?"
CREATE INDEX multipart_uploads_live_idx ON multipart_uploads (upload_id) WHERE state IN ('OPEN', 'COMPLETING');

COMMENT ON COLUMN media.content_sha256 IS
  'SHA-256 of the stored bytes, set only once verified: hashed by Mediary while receiving/assembling, '
  'or checked by a store that enforces x-amz-checksum-sha256. NULL on an UPLOADED row means verification '
  'is pending (the store could not enforce the declared media.sha256); whoever next reads the bytes '
  '(the processing worker) hashes them, compares with media.sha256 and sets this column.';
