-- The webhook rescue sweep (src/webhooks/repo.ts rescueStranded, every 5 s on every API process)
-- looks for pending deliveries overdue since their due time: only the pending ones are indexed,
-- so the sweep stays an index scan however long the delivery log grows.
CREATE INDEX webhook_deliveries_pending_idx
  ON webhook_deliveries ((COALESCE(next_attempt_at, created_at)))
  WHERE status = 'pending';
