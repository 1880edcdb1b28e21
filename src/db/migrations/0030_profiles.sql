-- Profile images (the UploadThing note, 3.7): a user's current avatar and the one waiting to
-- replace it. A new image replaces the current one only once it is READY (src/profiles/service.ts
-- swaps them in one transaction and deletes the replaced media after the commit); until then reads
-- keep showing the current one. There is no users table: users are JWT subjects.
ALTER TABLE media DROP CONSTRAINT media_purpose_ck;
ALTER TABLE media ADD CONSTRAINT media_purpose_ck CHECK (purpose IN ('library', 'post', 'profile'));

CREATE TABLE profile_images (
  user_id          text PRIMARY KEY,
  -- The image shown (READY when set; reads treat a DELETED one as none).
  media_id         uuid REFERENCES media (id),
  -- The image that replaces it once READY (a FAILED one is dropped and the current one stays).
  pending_media_id uuid REFERENCES media (id),
  -- Bumped at every swap: part of what a client caches on.
  version          integer NOT NULL DEFAULT 0,
  updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX profile_images_media_uq ON profile_images (media_id) WHERE media_id IS NOT NULL;
CREATE UNIQUE INDEX profile_images_pending_uq ON profile_images (pending_media_id)
  WHERE pending_media_id IS NOT NULL;

-- A waiting image that reaches READY or FAILED (whoever changes it: the worker, the sweeper, SQL)
-- announces its owner, so an API process settles the swap at once. A lost notification is made
-- up for by the next read, the next PUT and every (re)connect of the listener.
CREATE FUNCTION mediary_profile_pending_settled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM profile_images WHERE pending_media_id = NEW.id) THEN
    PERFORM pg_notify('mediary_profiles', NEW.owner_user_id);
  END IF;
  RETURN NULL;
END;
$$;
CREATE TRIGGER media_profile_pending_settled
  AFTER UPDATE OF status ON media
  FOR EACH ROW WHEN (NEW.purpose = 'profile' AND NEW.status IN ('READY', 'FAILED', 'DELETED')
                     AND OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION mediary_profile_pending_settled();
