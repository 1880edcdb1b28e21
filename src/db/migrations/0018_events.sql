-- The events outbox (issue 20): one row per state change of a media or a post, written by triggers
-- IN THE SAME TRANSACTION as the change, whoever makes it (the API, a worker, the sweeper, SQL typed
-- by an operator). A change that rolls back leaves no event; one that commits cannot lose its event.
-- Live streams (SSE) and webhooks read from here; a NOTIFY on `mediary_events` (payload: the event
-- id) wakes the API servers that stream them.
--
-- `tx` is the writing transaction's id. Readers deliver in (tx, id) order and only events of
-- transactions older than every transaction still running (pg_snapshot_xmin): a bigserial id is
-- drawn before commit, so a later id can commit first, and a reader that went by id alone would
-- step over the earlier one for good.
CREATE TABLE events (
  id            bigserial PRIMARY KEY,
  tx            xid8 NOT NULL DEFAULT pg_current_xact_id(),
  type          text NOT NULL,
  owner_user_id text,           -- the owning user when it happened (media: uploader or device owner)
  device_id     uuid,           -- the uploading device, when the device uploaded the media itself
  media_id      uuid,
  post_id       uuid,
  payload       jsonb NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  -- Set when webhook deliveries have been made for it (at once for types no webhook carries).
  dispatched_at timestamptz
);
CREATE INDEX events_tx_idx ON events (tx, id);
CREATE INDEX events_owner_idx ON events (owner_user_id, tx, id) WHERE owner_user_id IS NOT NULL;
CREATE INDEX events_device_idx ON events (device_id, tx, id) WHERE device_id IS NOT NULL;
CREATE INDEX events_media_idx ON events (media_id, tx, id) WHERE media_id IS NOT NULL;
CREATE INDEX events_created_idx ON events (created_at);
CREATE INDEX events_undispatched_idx ON events (id) WHERE dispatched_at IS NULL;

CREATE FUNCTION mediary_media_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  kind text;
  owner text;
  new_id bigint;
BEGIN
  IF NEW.status IS DISTINCT FROM OLD.status THEN
    kind := CASE NEW.status
      WHEN 'UPLOADED' THEN 'media.uploaded'
      WHEN 'PROCESSING' THEN 'media.processing'
      WHEN 'READY' THEN 'media.ready'
      WHEN 'FAILED' THEN 'media.failed'
      WHEN 'DELETED' THEN 'media.deleted'
      ELSE NULL END;
  ELSIF NEW.status = 'PROCESSING' AND NEW.processing_progress IS DISTINCT FROM OLD.processing_progress THEN
    kind := 'media.progress';
  END IF;
  IF kind IS NULL THEN
    RETURN NULL;
  END IF;
  owner := COALESCE(NEW.owner_user_id, (SELECT d.owner_user_id FROM devices d WHERE d.id = NEW.device_id));
  INSERT INTO events (type, owner_user_id, device_id, media_id, payload, dispatched_at)
  VALUES (
    kind,
    owner,
    CASE WHEN NEW.uploaded_by = 'device' THEN NEW.device_id END,
    NEW.id,
    jsonb_build_object(
      'mediaId', NEW.id,
      'status', NEW.status,
      'previousStatus', OLD.status,
      'mediaType', NEW.media_type,
      'progress', NEW.processing_progress,
      'error', CASE WHEN NEW.status = 'FAILED' THEN NEW.error END
    ),
    -- Progress is for live streams only; webhooks carry state changes.
    CASE WHEN kind IN ('media.progress', 'media.processing') THEN now() END
  )
  RETURNING id INTO new_id;
  PERFORM pg_notify('mediary_events', new_id::text);
  RETURN NULL;
END;
$$;
CREATE TRIGGER media_event
  AFTER UPDATE OF status, processing_progress ON media
  FOR EACH ROW EXECUTE FUNCTION mediary_media_event();

CREATE FUNCTION mediary_post_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  row posts;
  kind text;
  new_id bigint;
BEGIN
  IF TG_OP = 'DELETE' THEN
    row := OLD;
    kind := 'post.deleted';
  ELSIF TG_OP = 'INSERT' THEN
    row := NEW;
    kind := 'post.created';
  ELSE
    IF NEW.version IS NOT DISTINCT FROM OLD.version THEN
      RETURN NULL;
    END IF;
    row := NEW;
    kind := 'post.updated';
  END IF;
  INSERT INTO events (type, owner_user_id, post_id, payload)
  VALUES (kind, row.owner_user_id, row.id,
          jsonb_build_object('postId', row.id, 'version', row.version))
  RETURNING id INTO new_id;
  PERFORM pg_notify('mediary_events', new_id::text);
  RETURN NULL;
END;
$$;
CREATE TRIGGER post_event
  AFTER INSERT OR UPDATE OR DELETE ON posts
  FOR EACH ROW EXECUTE FUNCTION mediary_post_event();
