-- Deletion that survives a crash (issue 18). A media becoming DELETED puts a row here in the same
-- transaction (a trigger, so every path that deletes — API, post cascade, lifecycle jobs, device
-- retention, an operator's SQL — is covered). The row is removed only once every object of the
-- media is gone from the store and, when a CDN purge is configured, the purge was accepted: a
-- crash anywhere in between leaves the row, and the next drain (any process) finishes the work.
-- Column names avoid `key`/`*_key`: the sweeper reads those as references to stored objects.
CREATE TABLE media_deletions (
  media_id           uuid PRIMARY KEY REFERENCES media (id) ON DELETE CASCADE,
  enqueued_at        timestamptz NOT NULL DEFAULT now(),
  objects_removed_at timestamptz,                 -- the store objects are gone; only the purge is left
  attempts           integer NOT NULL DEFAULT 0,  -- failed attempts so far (backoff)
  next_attempt_at    timestamptz NOT NULL DEFAULT now(),
  last_error         text
);
CREATE INDEX media_deletions_due_idx ON media_deletions (next_attempt_at);

CREATE FUNCTION mediary_media_deletion_outbox() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO media_deletions (media_id) VALUES (NEW.id) ON CONFLICT (media_id) DO NOTHING;
  RETURN NULL;
END;
$$;
CREATE TRIGGER media_deletion_outbox AFTER UPDATE OF status ON media
  FOR EACH ROW WHEN (NEW.status = 'DELETED' AND OLD.status IS DISTINCT FROM 'DELETED')
  EXECUTE FUNCTION mediary_media_deletion_outbox();

-- Per-device retention: captures (media the device uploaded itself) whose capture time and arrival
-- are both older than this many days are deleted by the retention job; NULL keeps them forever.
ALTER TABLE devices ADD COLUMN retention_days integer
  CONSTRAINT devices_retention_days_ck CHECK (retention_days BETWEEN 1 AND 36500);
