-- What each uploader holds, kept by a trigger so a quota check is one row read: the declared bytes
-- of its media that are not DELETED or FAILED (a PENDING session reserves its size), and its open
-- (PENDING) sessions. The uploader is the principal that created the session: the device itself,
-- or the user (media.uploaded_by, 0007).
CREATE TABLE principal_usage (
  principal     text PRIMARY KEY,            -- 'device:<uuid>' | 'user:<id>'
  stored_bytes  bigint NOT NULL DEFAULT 0,
  open_sessions integer NOT NULL DEFAULT 0
);

CREATE FUNCTION mediary_media_usage() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  who text;
  d_bytes bigint := 0;
  d_open integer := 0;
BEGIN
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    who := CASE NEW.uploaded_by WHEN 'device' THEN 'device:' || NEW.device_id ELSE 'user:' || NEW.owner_user_id END;
    IF NEW.status NOT IN ('DELETED', 'FAILED') THEN d_bytes := d_bytes + NEW.bytes; END IF;
    IF NEW.status = 'PENDING' THEN d_open := d_open + 1; END IF;
  END IF;
  IF TG_OP = 'UPDATE' THEN
    IF OLD.status NOT IN ('DELETED', 'FAILED') THEN d_bytes := d_bytes - OLD.bytes; END IF;
    IF OLD.status = 'PENDING' THEN d_open := d_open - 1; END IF;
  END IF;
  IF who IS NULL OR (d_bytes = 0 AND d_open = 0) THEN RETURN NULL; END IF;
  INSERT INTO principal_usage AS u (principal, stored_bytes, open_sessions) VALUES (who, d_bytes, d_open)
    ON CONFLICT (principal) DO UPDATE
      SET stored_bytes = u.stored_bytes + EXCLUDED.stored_bytes,
          open_sessions = u.open_sessions + EXCLUDED.open_sessions;
  RETURN NULL;
END;
$$;

CREATE TRIGGER media_usage_insert AFTER INSERT ON media
  FOR EACH ROW EXECUTE FUNCTION mediary_media_usage();
CREATE TRIGGER media_usage_status AFTER UPDATE OF status ON media
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION mediary_media_usage();

-- What is there already.
INSERT INTO principal_usage (principal, stored_bytes, open_sessions)
SELECT CASE uploaded_by WHEN 'device' THEN 'device:' || device_id ELSE 'user:' || owner_user_id END,
       COALESCE(sum(bytes) FILTER (WHERE status NOT IN ('DELETED', 'FAILED')), 0),
       count(*) FILTER (WHERE status = 'PENDING')
  FROM media
 WHERE (uploaded_by = 'device' AND device_id IS NOT NULL) OR (uploaded_by = 'user' AND owner_user_id IS NOT NULL)
 GROUP BY 1;
