-- Posts: a user's caption and an ordered list of their media (the UploadThing note, 3.6).
CREATE TABLE posts (
  id              uuid PRIMARY KEY,
  owner_user_id   text NOT NULL,
  caption         text NOT NULL DEFAULT '',
  idempotency_key text,
  -- Bumped by every edit: a client may send the version it read, and a stale edit is refused.
  version         integer NOT NULL DEFAULT 1,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now()
);
-- A user's posts, newest first (keyset pagination on created_at, id).
CREATE INDEX posts_owner_created_idx ON posts (owner_user_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX posts_idempotency_uq ON posts (owner_user_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;

-- One post per media (the unique index is the last word when two requests race); positions are
-- 0..n-1 in a post, rewritten whole by an edit under the post's row lock.
CREATE TABLE post_media (
  post_id  uuid NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
  media_id uuid NOT NULL REFERENCES media (id),
  position integer NOT NULL CHECK (position >= 0),
  PRIMARY KEY (post_id, position)
);
CREATE UNIQUE INDEX post_media_media_uq ON post_media (media_id);

-- Media are deleted by status (their rows stay for the sweeper); a deleted media leaves its post
-- at once, whoever deleted it (the API, a cascade, an operator), so no post lists it.
CREATE FUNCTION mediary_media_deleted_detach() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM post_media WHERE media_id = NEW.id;
  RETURN NULL;
END;
$$;
CREATE TRIGGER media_deleted_detach
  AFTER UPDATE OF status ON media
  FOR EACH ROW WHEN (NEW.status = 'DELETED' AND OLD.status <> 'DELETED')
  EXECUTE FUNCTION mediary_media_deleted_detach();

-- What a media is for (the note's mediaType): it decides cleanup. 'post' media that no post took
-- within the grace period are removed by the lifecycle job; 'library' (the default) are kept.
ALTER TABLE media ADD COLUMN purpose text NOT NULL DEFAULT 'library'
  CONSTRAINT media_purpose_ck CHECK (purpose IN ('library', 'post'));
CREATE INDEX media_unattached_post_idx ON media (created_at) WHERE purpose = 'post' AND status <> 'DELETED';
