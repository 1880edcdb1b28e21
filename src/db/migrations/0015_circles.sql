-- Circles: a user's group of people (a family) that media and posts are shared with (the storage
-- note: "circle membership validation before upload"). The owner is a member implicitly.
CREATE TABLE circles (
  id            uuid PRIMARY KEY,
  owner_user_id text NOT NULL,
  name          text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX circles_owner_idx ON circles (owner_user_id);

CREATE TABLE circle_members (
  circle_id uuid NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
  user_id   text NOT NULL,
  added_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (circle_id, user_id)
);
CREATE INDEX circle_members_user_idx ON circle_members (user_id);

-- One row per thing shared: a media, or a post (and so every media on it, now and later).
-- `originals`: members may download the original as uploaded (EXIF and its GPS included);
-- without it they get the record (no GPS), variants and HLS only.
CREATE TABLE circle_shares (
  id         uuid PRIMARY KEY,
  circle_id  uuid NOT NULL REFERENCES circles (id) ON DELETE CASCADE,
  shared_by  text NOT NULL,
  media_id   uuid REFERENCES media (id),
  post_id    uuid REFERENCES posts (id) ON DELETE CASCADE,
  originals  boolean NOT NULL DEFAULT false,
  shared_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT circle_shares_one_thing CHECK ((media_id IS NULL) <> (post_id IS NULL))
);
CREATE UNIQUE INDEX circle_shares_media_uq ON circle_shares (circle_id, media_id) WHERE media_id IS NOT NULL;
CREATE UNIQUE INDEX circle_shares_post_uq ON circle_shares (circle_id, post_id) WHERE post_id IS NOT NULL;
CREATE INDEX circle_shares_media_idx ON circle_shares (media_id) WHERE media_id IS NOT NULL;
CREATE INDEX circle_shares_post_idx ON circle_shares (post_id) WHERE post_id IS NOT NULL;
