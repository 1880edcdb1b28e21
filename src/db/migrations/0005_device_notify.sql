-- API servers cache resolved device keys in memory. Any change that can withdraw or alter what a
-- key grants (revocation, a new owner, a replaced key hash, deletion) announces the device id on
-- `mediary_devices`, whoever makes it (the CLI, another server, or SQL typed by an operator), so
-- every server forgets that device at once instead of waiting for the cache entry to expire.
CREATE FUNCTION mediary_device_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('mediary_devices', OLD.id::text);
  RETURN NULL;
END;
$$;

CREATE TRIGGER devices_changed
  AFTER UPDATE OF revoked_at, owner_user_id, key_hash, id OR DELETE ON devices
  FOR EACH ROW EXECUTE FUNCTION mediary_device_changed();
