-- Background processing: progress and results on the media row, variants, worker claims.
ALTER TABLE media
  ADD COLUMN processing_attempts   integer NOT NULL DEFAULT 0,  -- attempts started for the current run
  ADD COLUMN processing_progress   smallint NOT NULL DEFAULT 0 CHECK (processing_progress BETWEEN 0 AND 100),
  ADD COLUMN processing_last_error jsonb,                       -- last error of any attempt, even a retried one
  ADD COLUMN processed_at          timestamptz,
  ADD COLUMN gps                   jsonb,                       -- EXIF GPS; shown to the owner only
  ADD COLUMN placeholder           text;                        -- thumbhash, base64

-- Derived images. Keys are content-addressed (they change whenever the bytes do), so they can be
-- cached forever; they live under the media's own prefix so deleting one media never touches another's.
CREATE TABLE media_variants (
  media_id   uuid NOT NULL REFERENCES media (id) ON DELETE CASCADE,
  name       text NOT NULL,
  format     text NOT NULL,
  key        text NOT NULL,
  width      integer NOT NULL CHECK (width > 0),
  height     integer NOT NULL CHECK (height > 0),
  bytes      bigint NOT NULL CHECK (bytes > 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (media_id, name)
);

-- Which worker connection holds which active job. A worker killed mid-job loses its connection;
-- any other worker sees the backend gone from pg_stat_activity and hands the job back for a retry,
-- long before pg-boss' own expiry would.
CREATE TABLE processing_claims (
  job_id        uuid PRIMARY KEY,
  media_id      uuid NOT NULL,
  backend_pid   integer NOT NULL,
  backend_start timestamptz NOT NULL,
  claimed_at    timestamptz NOT NULL DEFAULT now()
);
