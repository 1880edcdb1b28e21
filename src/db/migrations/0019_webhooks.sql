-- Webhooks (issue 20): subscriptions per owner (a user, or a device for what it uploads itself),
-- and one delivery per (subscription, event): its log (status, response code, latency, attempts).
-- Deliveries are made from the events outbox (0018) by the dispatcher and sent from the
-- `webhook` queue, apart from processing, so a slow or dead receiver never delays it.
CREATE TABLE webhook_subscriptions (
  id              uuid PRIMARY KEY,
  owner_user_id   text,
  owner_device_id uuid REFERENCES devices (id) ON DELETE CASCADE,
  url             text NOT NULL,
  event_types     text[] NOT NULL,
  -- whsec_…: needed to sign every delivery, so kept as is; shown to the owner only at creation.
  secret          text NOT NULL,
  enabled         boolean NOT NULL DEFAULT true,
  disabled_reason text,
  -- Deliveries given up in a row; reset by a success. Past WEBHOOK_DISABLE_AFTER_FAILURES: disabled.
  failures_in_row integer NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT webhook_subscriptions_one_owner CHECK ((owner_user_id IS NULL) <> (owner_device_id IS NULL))
);
CREATE INDEX webhook_subscriptions_user_idx ON webhook_subscriptions (owner_user_id) WHERE owner_user_id IS NOT NULL;
CREATE INDEX webhook_subscriptions_device_idx ON webhook_subscriptions (owner_device_id) WHERE owner_device_id IS NOT NULL;

CREATE TABLE webhook_deliveries (
  id              uuid PRIMARY KEY,            -- the `webhook-id` header: the same on every attempt
  subscription_id uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
  event_id        bigint NOT NULL,
  event_type      text NOT NULL,
  body            text NOT NULL,               -- exactly the JSON sent (and signed)
  status          text NOT NULL DEFAULT 'pending'
                  CONSTRAINT webhook_deliveries_status_ck CHECK (status IN ('pending', 'succeeded', 'failed')),
  attempts        integer NOT NULL DEFAULT 0,
  response_status integer,
  latency_ms      integer,
  last_error      text,
  created_at      timestamptz NOT NULL DEFAULT now(),
  last_attempt_at timestamptz,
  next_attempt_at timestamptz,
  delivered_at    timestamptz
);
CREATE UNIQUE INDEX webhook_deliveries_event_uq ON webhook_deliveries (subscription_id, event_id);
CREATE INDEX webhook_deliveries_log_idx ON webhook_deliveries (subscription_id, created_at DESC, id DESC);
