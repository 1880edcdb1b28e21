-- Devices that owners manage through the API (issue 18): when each was last seen, a key rotation
-- with an overlap window (the previous key keeps working until previous_key_expires_at, so a camera
-- in the field finishes what it is sending), and claim codes: a device asks for a short code, shows
-- it, its owner types it into the app, and the device then fetches its own key (no key is typed).
ALTER TABLE devices
  ADD COLUMN last_seen_at            timestamptz,
  ADD COLUMN previous_key_hash       text UNIQUE,
  ADD COLUMN previous_key_expires_at timestamptz,
  ADD COLUMN key_rotated_at          timestamptz,
  ADD CONSTRAINT devices_previous_key_pair
    CHECK ((previous_key_hash IS NULL) = (previous_key_expires_at IS NULL));

-- A rotation changes which keys are valid: announce it like a key change (0005 fires on key_hash,
-- which a rotation changes too; this also covers ending an overlap early).
DROP TRIGGER devices_changed ON devices;
CREATE TRIGGER devices_changed
  AFTER UPDATE OF revoked_at, owner_user_id, key_hash, previous_key_hash, id OR DELETE ON devices
  FOR EACH ROW EXECUTE FUNCTION mediary_device_changed();

CREATE TABLE device_claims (
  device_code_hash text PRIMARY KEY,            -- sha256 of the secret the device polls with
  user_code        text NOT NULL UNIQUE,        -- what the device shows and its owner types
  name             text NOT NULL,               -- the device's suggested name
  created_at       timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz NOT NULL,
  device_id        uuid REFERENCES devices (id) ON DELETE CASCADE, -- set when an owner claims it
  claimed_at       timestamptz,
  delivered_at     timestamptz                  -- the device fetched its key (once)
);
CREATE INDEX device_claims_expiry_idx ON device_claims (expires_at);
