-- Media attached to an entity of another service (the gRPC API's AttachMedia: "post:1234" of an
-- external post service). One entity per media, like Mediary's own posts; the lifecycle job keeps
-- attached 'post' media, and a deleted media leaves its entity as it leaves its post.
CREATE TABLE media_attachments (
  media_id    uuid PRIMARY KEY REFERENCES media (id),
  entity      text NOT NULL,
  attached_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_attachments_entity_idx ON media_attachments (entity);

CREATE OR REPLACE FUNCTION mediary_media_deleted_detach() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM post_media WHERE media_id = NEW.id;
  DELETE FROM media_attachments WHERE media_id = NEW.id;
  RETURN NULL;
END;
$$;
