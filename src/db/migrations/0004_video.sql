-- Video: the HLS ladder of a processed video and every object it consists of.
-- The master playlist's key names the run's prefix (hls/<mediaId>/<runId>/); playback tokens are
-- scoped to that prefix, so a reprocessed video's old tokens stop working with its old objects.
ALTER TABLE media ADD COLUMN hls_master_key text;

CREATE TABLE media_renditions (
  media_id     uuid NOT NULL REFERENCES media (id) ON DELETE CASCADE,
  name         text NOT NULL,                        -- 360p, 720p, 1080p, 2160p
  width        integer NOT NULL CHECK (width > 0),
  height       integer NOT NULL CHECK (height > 0),
  bitrate      integer NOT NULL CHECK (bitrate > 0), -- BANDWIDTH of the master playlist, bits/s
  codecs       text NOT NULL,
  playlist_key text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (media_id, name)
);

-- Every stored HLS object (playlists, init and media segments). The column is named storage_key so
-- the orphan sweeper counts these objects as referenced.
CREATE TABLE media_hls_objects (
  media_id    uuid NOT NULL REFERENCES media (id) ON DELETE CASCADE,
  storage_key text NOT NULL,
  bytes       bigint NOT NULL CHECK (bytes >= 0),
  PRIMARY KEY (media_id, storage_key)
);
CREATE INDEX media_hls_objects_key_idx ON media_hls_objects (storage_key);
