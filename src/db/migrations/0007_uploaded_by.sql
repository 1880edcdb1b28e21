-- Who created each upload session: the device itself ('device'), or a user ('user'), who may name a
-- device they own. A device key reaches only what its device uploaded itself; a user's uploads
-- naming a device stay the user's (found by a security review: the device key read their GPS).
-- Rows from before this migration cannot be told apart when a user named a device with a
-- messageId; they are taken as the device's, which keeps their earlier access unchanged.
ALTER TABLE media ADD COLUMN uploaded_by text NOT NULL DEFAULT 'device'
  CONSTRAINT media_uploaded_by_ck CHECK (uploaded_by IN ('device', 'user'));
UPDATE media SET uploaded_by = 'user' WHERE device_id IS NULL OR idempotency_key IS NOT NULL;
-- The default stays for servers of the previous version during a rolling deploy (their inserts
-- name no uploader and keep the old rule); this version always names it.

-- Users' Idempotency-Key now also covers their uploads that name a device (messageId is for
-- devices only), so the key is unique per user over all their uploads.
DROP INDEX media_user_idempotency_uq;
CREATE UNIQUE INDEX media_user_idempotency_uq ON media (owner_user_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL AND uploaded_by = 'user';
