/** SQL of webhook subscriptions, deliveries and the dispatch of outbox events into deliveries. */
import { statement } from '../db/named.ts';
import type { Queryable } from '../db/pool.ts';

export interface SubscriptionRow {
  id: string;
  owner_user_id: string | null;
  owner_device_id: string | null;
  url: string;
  event_types: string[];
  secret: string;
  enabled: boolean;
  disabled_reason: string | null;
  failures_in_row: number;
  created_at: Date;
  updated_at: Date;
}

export interface DeliveryRow {
  id: string;
  subscription_id: string;
  event_id: string;
  event_type: string;
  body: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  response_status: number | null;
  latency_ms: number | null;
  last_error: string | null;
  created_at: Date;
  last_attempt_at: Date | null;
  next_attempt_at: Date | null;
  delivered_at: Date | null;
}

export type Owner = { userId: string } | { deviceId: string };

const ownerWhere = (o: Owner, n: number) =>
  'userId' in o
    ? { sql: `owner_user_id = $${n}`, value: o.userId }
    : { sql: `owner_device_id = $${n}::uuid`, value: o.deviceId };

export async function insertSubscription(
  db: Queryable,
  s: { id: string; owner: Owner; url: string; eventTypes: string[]; secret: string },
): Promise<SubscriptionRow> {
  const { rows } = await db.query<SubscriptionRow>(
    `INSERT INTO webhook_subscriptions (id, owner_user_id, owner_device_id, url, event_types, secret)
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
    [
      s.id,
      'userId' in s.owner ? s.owner.userId : null,
      'deviceId' in s.owner ? s.owner.deviceId : null,
      s.url,
      s.eventTypes,
      s.secret,
    ],
  );
  return rows[0]!;
}

export async function findSubscription(db: Queryable, owner: Owner, id: string) {
  const w = ownerWhere(owner, 2);
  const { rows } = await db.query<SubscriptionRow>(
    `SELECT * FROM webhook_subscriptions WHERE id = $1 AND ${w.sql}`,
    [id, w.value],
  );
  return rows[0];
}

export async function listSubscriptions(db: Queryable, owner: Owner): Promise<SubscriptionRow[]> {
  const w = ownerWhere(owner, 1);
  const { rows } = await db.query<SubscriptionRow>(
    `SELECT * FROM webhook_subscriptions WHERE ${w.sql} ORDER BY created_at, id`,
    [w.value],
  );
  return rows;
}

export async function updateSubscription(
  db: Queryable,
  owner: Owner,
  id: string,
  patch: { url?: string | undefined; eventTypes?: string[] | undefined; enabled?: boolean | undefined },
): Promise<SubscriptionRow | undefined> {
  const w = ownerWhere(owner, 5);
  const { rows } = await db.query<SubscriptionRow>(
    `UPDATE webhook_subscriptions
        SET url = COALESCE($2, url), event_types = COALESCE($3, event_types),
            enabled = COALESCE($4, enabled),
            -- Enabling again starts the failure count afresh.
            failures_in_row = CASE WHEN $4 THEN 0 ELSE failures_in_row END,
            disabled_reason = CASE WHEN $4 THEN NULL WHEN $4 = false THEN 'disabled by its owner' ELSE disabled_reason END,
            updated_at = now()
      WHERE id = $1 AND ${w.sql} RETURNING *`,
    [id, patch.url ?? null, patch.eventTypes ?? null, patch.enabled ?? null, w.value],
  );
  return rows[0];
}

export async function deleteSubscription(db: Queryable, owner: Owner, id: string): Promise<boolean> {
  const w = ownerWhere(owner, 2);
  const res = await db.query(`DELETE FROM webhook_subscriptions WHERE id = $1 AND ${w.sql}`, [id, w.value]);
  return (res.rowCount ?? 0) > 0;
}

export async function listDeliveries(db: Queryable, subscriptionId: string, limit: number) {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT * FROM webhook_deliveries WHERE subscription_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
    [subscriptionId, limit],
  );
  return rows;
}

export async function findDelivery(db: Queryable, subscriptionId: string, id: string) {
  const { rows } = await db.query<DeliveryRow>(
    'SELECT * FROM webhook_deliveries WHERE subscription_id = $1 AND id = $2',
    [subscriptionId, id],
  );
  return rows[0];
}

const SETTLE_UNMATCHED = `WITH settled AS (
     UPDATE events SET dispatched_at = now()
      WHERE id IN (SELECT e.id FROM events e
                    WHERE e.dispatched_at IS NULL
                      AND NOT EXISTS (
                        SELECT 1 FROM webhook_subscriptions s
                         WHERE s.enabled AND e.type = ANY (s.event_types)
                           AND (s.owner_user_id = e.owner_user_id OR s.owner_device_id = e.device_id))
                    ORDER BY e.id LIMIT $1 FOR UPDATE SKIP LOCKED)
     RETURNING id
   )
   SELECT (SELECT count(*) FROM settled)::int AS settled,
          EXISTS (SELECT 1 FROM events WHERE dispatched_at IS NULL
                     AND id NOT IN (SELECT id FROM settled)) AS rest`;

/**
 * Marks dispatched, in one autocommitted statement, the undispatched events no enabled
 * subscription carries (no delivery to make, so nothing to enqueue in the same transaction), and
 * says whether undispatched events remain: those some subscription carries (for
 * {@link dispatchEvents}), or ones another dispatcher holds. Most wake-ups of the dispatcher find
 * nothing that needs the three-statement transaction: with no webhooks configured, none do.
 * An event settled here just before a matching subscription commits is treated as older than the
 * subscription, as {@link dispatchEvents} treats one it claimed a moment earlier.
 *
 * It runs for nearly every media event (uploaded, processing, ready), so `prepared` sends it as a
 * named statement, parsed and planned once per connection (DATABASE_PREPARED_STATEMENTS):
 * measured 2026-12-03, 500–650 µs of Postgres CPU per call unnamed, 100–150 µs named.
 */
export async function settleUnmatchedEvents(
  db: Queryable,
  limit: number,
  { prepared = false }: { prepared?: boolean } = {},
): Promise<{ settled: number; rest: boolean }> {
  const values = [limit];
  const { rows } = await db.query<{ settled: number; rest: boolean }>(
    statement(SETTLE_UNMATCHED, values, prepared, 'mediary-settle-events'),
  );
  return rows[0]!;
}

/**
 * Claims up to `limit` events no dispatcher has handled (SKIP LOCKED: instances share the work),
 * marks them dispatched and makes one delivery per enabled subscription that wants each.
 * Runs inside the caller's transaction, with the enqueueing of the deliveries.
 */
export async function dispatchEvents(
  tx: Queryable,
  limit: number,
): Promise<{ claimed: number; deliveries: string[] }> {
  const { rows } = await tx.query<{ claimed: number; deliveries: string[] | null }>(
    `WITH claimed AS (
       UPDATE events SET dispatched_at = now()
        WHERE id IN (SELECT id FROM events WHERE dispatched_at IS NULL ORDER BY id
                      LIMIT $1 FOR UPDATE SKIP LOCKED)
       RETURNING id, type, owner_user_id, device_id, payload, created_at
     ), made AS (
       INSERT INTO webhook_deliveries (id, subscription_id, event_id, event_type, body)
       SELECT gen_random_uuid(), s.id, e.id, e.type,
              jsonb_build_object(
                'type', e.type,
                'timestamp', to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                'eventId', e.id::text,
                'data', e.payload)::text
         FROM claimed e JOIN webhook_subscriptions s
           ON s.enabled AND e.type = ANY (s.event_types)
          AND (s.owner_user_id = e.owner_user_id OR s.owner_device_id = e.device_id)
       ON CONFLICT (subscription_id, event_id) DO NOTHING
       RETURNING id
     )
     SELECT (SELECT count(*) FROM claimed)::int AS claimed, (SELECT array_agg(id::text) FROM made) AS deliveries`,
    [limit],
  );
  return { claimed: rows[0]!.claimed, deliveries: rows[0]!.deliveries ?? [] };
}

/** The delivery and its subscription, for an attempt (none: deleted since). */
export async function deliveryForAttempt(db: Queryable, id: string) {
  const { rows } = await db.query<DeliveryRow & { url: string; secret: string; enabled: boolean }>(
    `SELECT d.*, s.url, s.secret, s.enabled FROM webhook_deliveries d
       JOIN webhook_subscriptions s ON s.id = d.subscription_id WHERE d.id = $1`,
    [id],
  );
  return rows[0];
}

export async function recordAttempt(
  tx: Queryable,
  id: string,
  r: {
    status: 'pending' | 'succeeded' | 'failed';
    responseStatus: number | null;
    latencyMs: number;
    error: string | null;
    nextAttemptAt: Date | null;
  },
): Promise<void> {
  await tx.query(
    `UPDATE webhook_deliveries
        SET attempts = attempts + 1, status = $2, response_status = $3, latency_ms = $4, last_error = $5,
            last_attempt_at = now(), next_attempt_at = $6,
            delivered_at = CASE WHEN $2 = 'succeeded' THEN now() ELSE delivered_at END
      WHERE id = $1`,
    [id, r.status, r.responseStatus, r.latencyMs, r.error, r.nextAttemptAt],
  );
}

/** After a delivery ended: a success resets the count, a given-up one may disable the subscription. */
export async function recordOutcome(
  tx: Queryable,
  subscriptionId: string,
  succeeded: boolean,
  disableAfter: number,
): Promise<void> {
  if (succeeded) {
    await tx.query(
      'UPDATE webhook_subscriptions SET failures_in_row = 0 WHERE id = $1 AND failures_in_row <> 0',
      [subscriptionId],
    );
    return;
  }
  await tx.query(
    `UPDATE webhook_subscriptions
        SET failures_in_row = failures_in_row + 1,
            enabled = CASE WHEN $2 > 0 AND failures_in_row + 1 >= $2 THEN false ELSE enabled END,
            disabled_reason = CASE WHEN $2 > 0 AND failures_in_row + 1 >= $2
                                   THEN 'disabled after ' || (failures_in_row + 1) || ' failed deliveries in a row'
                                   ELSE disabled_reason END,
            updated_at = now()
      WHERE id = $1`,
    [subscriptionId, disableAfter],
  );
}

/**
 * Takes the delivery for one attempt: only a pending one that is due (not held by an attempt in
 * flight elsewhere), held for `leaseMs` (the attempt's time limit and a margin). After a crash the
 * lease runs out and `rescueStranded` queues the delivery again. False: not ours to send now.
 */
export async function claimAttempt(db: Queryable, id: string, leaseMs: number): Promise<boolean> {
  const res = await db.query(
    `UPDATE webhook_deliveries SET next_attempt_at = now() + $2 * interval '1 millisecond'
      WHERE id = $1 AND status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= now() + interval '2 seconds')`,
    [id, leaseMs],
  );
  return (res.rowCount ?? 0) > 0;
}

/**
 * Pending deliveries due for longer than `graceMs` (their job was lost with a crashed process, or
 * their attempt's lease ran out), made due now; the caller queues them again in the same
 * transaction. A delivery whose job is merely late gets a second job: the claim sends it once.
 */
export async function rescueStranded(tx: Queryable, graceMs: number, limit: number): Promise<string[]> {
  const { rows } = await tx.query<{ id: string }>(
    `UPDATE webhook_deliveries SET next_attempt_at = now()
      WHERE id IN (SELECT id FROM webhook_deliveries
                    WHERE status = 'pending'
                      AND COALESCE(next_attempt_at, created_at) < now() - $1 * interval '1 millisecond'
                    LIMIT $2 FOR UPDATE SKIP LOCKED)
      RETURNING id::text`,
    [graceMs, limit],
  );
  return rows.map((r) => r.id);
}

/** Manual redelivery: the same message (same webhook-id) goes out again from the first attempt. */
export async function resetForRedelivery(db: Queryable, id: string): Promise<void> {
  await db.query(
    `UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now() WHERE id = $1`,
    [id],
  );
}
