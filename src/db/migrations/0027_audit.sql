-- The audit log (issue 21): an append-only record of security-relevant actions.
--
-- State changes are recorded by triggers, in the transaction that makes the change (they commit
-- or roll back together), whoever makes it: the API, the CLI, a job, an operator's SQL. Who did
-- it and from where comes from the transaction-local setting `mediary.audit_context` (JSON:
-- {"kind","id","ip","ua","rid"}) that the application sets in that transaction
-- (src/audit/context.ts); without it the actor is the database role (`kind: "database"`).
-- Reads (downloads, signed URLs, playback) are inserted by the application itself, asynchronously.
--
-- `owners`: the users whose resource this is (the media's owning user, a device's owner, both
-- owners of a hand-over, the sharer and the circle's owner): `GET /api/v1/audit` shows a user the
-- rows that name them here.
CREATE TABLE audit_log (
  id            bigserial PRIMARY KEY,
  at            timestamptz NOT NULL DEFAULT now(),
  action        text NOT NULL,
  actor_kind    text NOT NULL,
  actor_id      text,
  resource_type text NOT NULL,
  resource_id   text NOT NULL,
  owners        text[] NOT NULL DEFAULT '{}',
  ip            text,
  user_agent    text,
  request_id    text,
  details       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_owners_idx ON audit_log USING gin (owners);
CREATE INDEX audit_log_resource_idx ON audit_log (resource_id, id);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- Append-only: UPDATE and TRUNCATE are refused, DELETE too unless it is the retention purge
-- (audit_purge below), and then only of rows older than the purge's cutoff. This guards against
-- mistakes and application bugs; whoever owns the database can still drop the trigger (ship the
-- log elsewhere if that must be prevented too).
CREATE FUNCTION audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  cutoff text := current_setting('mediary.audit_purge_before', true);
BEGIN
  IF TG_OP = 'DELETE' AND cutoff IS NOT NULL AND cutoff <> '' AND OLD.at < cutoff::timestamptz THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'audit_log is append-only (% refused)', TG_OP USING ERRCODE = '42501';
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_guard();

-- The retention purge: deletes at most `max_rows` rows older than `cutoff` (at least a day ago).
CREATE FUNCTION audit_purge(cutoff timestamptz, max_rows integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  IF cutoff > now() - interval '1 day' THEN
    RAISE EXCEPTION 'audit_purge keeps at least the last day (cutoff %)', cutoff;
  END IF;
  PERFORM set_config('mediary.audit_purge_before', cutoff::text, true);
  DELETE FROM audit_log WHERE id IN (
    SELECT id FROM audit_log WHERE at < cutoff ORDER BY at LIMIT max_rows);
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM set_config('mediary.audit_purge_before', '', true);
  RETURN n;
END;
$$;

-- The user a media belongs to (src/media/privacy.ts owningUser): its recorded owner, else the
-- uploading device's owner.
CREATE FUNCTION audit_media_owner(media_id uuid) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT COALESCE(m.owner_user_id, d.owner_user_id)
    FROM media m LEFT JOIN devices d ON d.id = m.device_id WHERE m.id = media_id
$$;

-- One row, with the actor and origin of the current transaction.
CREATE FUNCTION audit_write(action text, resource_type text, resource_id text, owners text[], details jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  raw text := current_setting('mediary.audit_context', true);
  ctx jsonb := CASE WHEN raw IS NULL OR raw = '' THEN NULL ELSE raw::jsonb END;
BEGIN
  INSERT INTO audit_log (action, actor_kind, actor_id, resource_type, resource_id, owners, ip,
                         user_agent, request_id, details)
  VALUES (action, COALESCE(ctx->>'kind', 'database'), COALESCE(ctx->>'id', current_user::text),
          resource_type, resource_id,
          ARRAY(SELECT DISTINCT o FROM unnest(owners) o WHERE o IS NOT NULL),
          ctx->>'ip', ctx->>'ua', ctx->>'rid', COALESCE(details, '{}'));
END;
$$;

CREATE FUNCTION audit_devices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM audit_write('device.created', 'device', NEW.id::text, ARRAY[NEW.owner_user_id],
                        jsonb_build_object('name', NEW.name, 'ownerUserId', NEW.owner_user_id));
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN
    PERFORM audit_write('device.deleted', 'device', OLD.id::text, ARRAY[OLD.owner_user_id], '{}');
    RETURN NULL;
  END IF;
  IF OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL THEN
    PERFORM audit_write('device.revoked', 'device', NEW.id::text, ARRAY[NEW.owner_user_id], '{}');
  END IF;
  IF OLD.owner_user_id IS DISTINCT FROM NEW.owner_user_id THEN
    PERFORM audit_write('device.handed_over', 'device', NEW.id::text,
                        ARRAY[OLD.owner_user_id, NEW.owner_user_id],
                        jsonb_build_object('from', OLD.owner_user_id, 'to', NEW.owner_user_id));
  END IF;
  IF OLD.key_hash IS DISTINCT FROM NEW.key_hash THEN
    PERFORM audit_write('device.key_rotated', 'device', NEW.id::text, ARRAY[NEW.owner_user_id],
                        jsonb_build_object('previousKeyExpiresAt', NEW.previous_key_expires_at));
  END IF;
  IF OLD.name IS DISTINCT FROM NEW.name THEN
    PERFORM audit_write('device.renamed', 'device', NEW.id::text, ARRAY[NEW.owner_user_id],
                        jsonb_build_object('from', OLD.name, 'to', NEW.name));
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER devices_audit AFTER INSERT OR DELETE OR UPDATE OF revoked_at, owner_user_id, key_hash, name
  ON devices FOR EACH ROW EXECUTE FUNCTION audit_devices();

CREATE FUNCTION audit_device_claims() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM audit_write('device.claimed', 'device', NEW.device_id::text,
                      ARRAY[(SELECT owner_user_id FROM devices WHERE id = NEW.device_id)], '{}');
  RETURN NULL;
END;
$$;
CREATE TRIGGER device_claims_audit AFTER UPDATE OF device_id ON device_claims
  FOR EACH ROW WHEN (OLD.device_id IS NULL AND NEW.device_id IS NOT NULL)
  EXECUTE FUNCTION audit_device_claims();

CREATE FUNCTION audit_media_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM audit_write('media.deleted', 'media', NEW.id::text, ARRAY[audit_media_owner(NEW.id)],
                      jsonb_build_object('previousStatus', OLD.status, 'fileName', NEW.file_name));
  RETURN NULL;
END;
$$;
CREATE TRIGGER media_deleted_audit AFTER UPDATE OF status ON media
  FOR EACH ROW WHEN (NEW.status = 'DELETED' AND OLD.status IS DISTINCT FROM 'DELETED')
  EXECUTE FUNCTION audit_media_deleted();

CREATE FUNCTION audit_circle_shares() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  s circle_shares := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  circle_owner text := (SELECT owner_user_id FROM circles WHERE id = s.circle_id);
  what jsonb := jsonb_build_object('circleId', s.circle_id, 'mediaId', s.media_id, 'postId', s.post_id,
                                   'originals', s.originals, 'sharedBy', s.shared_by);
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.originals IS NOT DISTINCT FROM NEW.originals THEN
    RETURN NULL;
  END IF;
  PERFORM audit_write(CASE TG_OP WHEN 'INSERT' THEN 'share.created' WHEN 'UPDATE' THEN 'share.changed'
                                 ELSE 'share.removed' END,
                      CASE WHEN s.media_id IS NOT NULL THEN 'media' ELSE 'post' END,
                      COALESCE(s.media_id, s.post_id)::text,
                      ARRAY[s.shared_by, circle_owner], what);
  RETURN NULL;
END;
$$;
CREATE TRIGGER circle_shares_audit AFTER INSERT OR UPDATE OR DELETE ON circle_shares
  FOR EACH ROW EXECUTE FUNCTION audit_circle_shares();

CREATE FUNCTION audit_circle_members() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  m circle_members := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
  PERFORM audit_write(CASE TG_OP WHEN 'INSERT' THEN 'circle.member_added' ELSE 'circle.member_removed' END,
                      'circle', m.circle_id::text,
                      ARRAY[m.user_id, (SELECT owner_user_id FROM circles WHERE id = m.circle_id)],
                      jsonb_build_object('userId', m.user_id));
  RETURN NULL;
END;
$$;
CREATE TRIGGER circle_members_audit AFTER INSERT OR DELETE ON circle_members
  FOR EACH ROW EXECUTE FUNCTION audit_circle_members();
