-- 0005 announces row changes to devices; TRUNCATE fires no row triggers, so it announces '*':
-- every server drops all cached device keys (test data resets, an operator wiping devices).
CREATE FUNCTION mediary_devices_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('mediary_devices', '*');
  RETURN NULL;
END;
$$;

CREATE TRIGGER devices_truncated
  AFTER TRUNCATE ON devices
  FOR EACH STATEMENT EXECUTE FUNCTION mediary_devices_truncated();
