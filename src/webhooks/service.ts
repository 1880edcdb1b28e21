/**
 * Webhooks: subscriptions per owner, the dispatcher that turns outbox events into deliveries,
 * and the delivery attempts (signed per Standard Webhooks, retried with backoff, logged, and the
 * subscription disabled after sustained failure).
 */
import { randomUUID } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principals.ts';
import type { WebhooksConfig } from '../config.ts';
import { withTransaction, type Pool } from '../db/pool.ts';
import { AppError, toError } from '../errors.ts';
import { NO_METRICS, type Metrics } from '../metrics/port.ts';
import type { EventHub } from '../events/stream.ts';
import * as repo from './repo.ts';
import type { WebhookDeliveryQueue } from './ports.ts';
import { sendWebhook } from './sender.ts';
import { newWebhookSecret, signatureHeaders } from './signing.ts';
import { isForbiddenAddress } from './ssrf.ts';

/** Event types a webhook can carry (progress is for live streams only). */
export const WEBHOOK_EVENT_TYPES = [
  'media.uploaded',
  'media.ready',
  'media.failed',
  'media.deleted',
  'post.created',
  'post.updated',
  'post.deleted',
] as const;

/** How long past its due time a pending delivery may wait before it is queued again. */
const RESCUE_GRACE_MS = 10_000;
/** Events settled or dispatched per statement. */
const DISPATCH_BATCH = 100;

const ownerOf = (p: Principal): repo.Owner =>
  p.kind === 'user' ? { userId: p.userId } : { deviceId: p.deviceId };

export class WebhookService {
  private stopped = false;
  private dispatching: Promise<void> | undefined;
  private rescuing: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly queue: WebhookDeliveryQueue,
    private readonly config: WebhooksConfig,
    private readonly logger: Logger,
    private readonly metrics: Metrics = NO_METRICS,
    /** The dispatcher's hot statement as a named prepared one (DATABASE_PREPARED_STATEMENTS). */
    private readonly prepared = false,
  ) {}

  // ---- subscriptions ------------------------------------------------------------------

  async create(p: Principal, input: { url: string; events: string[] }) {
    await this.admitUrl(input.url);
    const secret = newWebhookSecret();
    const row = await repo.insertSubscription(this.pool, {
      id: randomUUID(),
      owner: ownerOf(p),
      url: input.url,
      eventTypes: [...new Set(input.events)],
      secret,
    });
    return { row, secret };
  }

  list(p: Principal) {
    return repo.listSubscriptions(this.pool, ownerOf(p));
  }

  async get(p: Principal, id: string) {
    const row = await repo.findSubscription(this.pool, ownerOf(p), id);
    if (!row) throw new AppError('not_found', 'Webhook subscription not found.');
    return row;
  }

  async update(p: Principal, id: string, patch: { url?: string; events?: string[]; enabled?: boolean }) {
    if (patch.url !== undefined) await this.admitUrl(patch.url);
    const row = await repo.updateSubscription(this.pool, ownerOf(p), id, {
      url: patch.url,
      eventTypes: patch.events ? [...new Set(patch.events)] : undefined,
      enabled: patch.enabled,
    });
    if (!row) throw new AppError('not_found', 'Webhook subscription not found.');
    return row;
  }

  async remove(p: Principal, id: string): Promise<void> {
    if (!(await repo.deleteSubscription(this.pool, ownerOf(p), id))) {
      throw new AppError('not_found', 'Webhook subscription not found.');
    }
  }

  async deliveries(p: Principal, id: string, limit: number) {
    await this.get(p, id);
    return repo.listDeliveries(this.pool, id, limit);
  }

  /** Sends a delivery again (same webhook-id), whatever its outcome was. */
  async redeliver(p: Principal, id: string, deliveryId: string) {
    await this.get(p, id);
    const d = await repo.findDelivery(this.pool, id, deliveryId);
    if (!d) throw new AppError('not_found', 'Delivery not found.');
    await withTransaction(this.pool, async (tx) => {
      await repo.resetForRedelivery(tx, deliveryId);
      await this.queue.enqueue(tx, deliveryId);
    });
    this.queue.wake();
    return (await repo.findDelivery(this.pool, id, deliveryId))!;
  }

  /**
   * http(s) only, no credentials in the URL, and (unless private targets are allowed) no host that
   * is or resolves to a forbidden address now. Deliveries check the address again at connect.
   */
  private async admitUrl(url: string): Promise<void> {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new AppError('validation_failed', 'The webhook URL is not a URL.', { field: 'url' });
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') {
      throw new AppError('validation_failed', 'The webhook URL must be http or https.', { field: 'url' });
    }
    if (u.username || u.password) {
      throw new AppError('validation_failed', 'The webhook URL must not carry credentials.', {
        field: 'url',
      });
    }
    if (this.config.allowPrivateTargets) return;
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const addresses =
      isIP(host) !== 0
        ? [host]
        : await lookup(host, { all: true }).then(
            (a) => a.map((x) => x.address),
            () => [],
          );
    const bad = addresses.find(isForbiddenAddress);
    if (bad !== undefined) {
      throw new AppError(
        'webhook_target_refused',
        'The webhook URL points to a private, loopback or link-local address.',
        { field: 'url' },
      );
    }
  }

  // ---- dispatch and delivery ------------------------------------------------------------

  /** Starts the dispatcher (woken by every committed event, and every few seconds) and the sender. */
  async start(hub: EventHub, concurrency = 4): Promise<void> {
    await this.queue.work(concurrency, (job) => this.attempt(job.deliveryId));
    this.unsubscribe = hub.subscribe(() => this.dispatchSoon());
    this.timer = setInterval(() => {
      this.dispatchSoon();
      this.rescueSoon();
    }, 5000);
    this.timer.unref();
    this.dispatchSoon();
    this.rescueSoon();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearInterval(this.timer);
    await this.dispatching;
    await this.rescuing;
    await this.queue.stop();
  }

  private dispatchSoon(): void {
    if (this.stopped) return;
    if (this.dispatching) {
      this.again = true;
      return;
    }
    this.dispatching = (async () => {
      try {
        do {
          this.again = false;
          for (;;) {
            // Events no subscription carries need no delivery: settled in one statement. Only
            // when others remain does the transaction that makes and enqueues deliveries run.
            const fast = await repo.settleUnmatchedEvents(this.pool, DISPATCH_BATCH, {
              prepared: this.prepared,
            });
            let more = fast.settled === DISPATCH_BATCH;
            if (fast.rest) {
              const r = await withTransaction(this.pool, async (tx) => {
                const d = await repo.dispatchEvents(tx, DISPATCH_BATCH);
                for (const id of d.deliveries) await this.queue.enqueue(tx, id);
                return d;
              });
              if (r.deliveries.length > 0) this.queue.wake();
              more ||= r.claimed === DISPATCH_BATCH;
            }
            if (!more || this.stopped) break;
          }
        } while (this.again && !this.stopped);
      } catch (err) {
        this.logger.warn({ err }, 'webhook dispatch failed; retrying on the next event or tick');
      } finally {
        this.dispatching = undefined;
      }
    })();
  }

  /**
   * Queues again the deliveries a crashed process left behind: a job lost in flight (its attempt's
   * lease ran out) or never run. At-least-once: the receiver may see such a delivery twice, with the
   * same webhook-id.
   */
  private rescueSoon(): void {
    if (this.stopped || this.rescuing) return;
    this.rescuing = this.rescueStranded().finally(() => (this.rescuing = undefined));
  }

  private async rescueStranded(): Promise<void> {
    try {
      const ids = await withTransaction(this.pool, async (tx) => {
        const found = await repo.rescueStranded(tx, RESCUE_GRACE_MS, 100);
        for (const id of found) await this.queue.enqueue(tx, id);
        return found;
      });
      if (ids.length > 0) {
        this.logger.info({ deliveries: ids.length }, 'queued stranded webhook deliveries again');
        this.queue.wake();
      }
    } catch (err) {
      this.logger.warn({ err }, 'rescuing stranded webhook deliveries failed; retrying on the next tick');
    }
  }

  /** One attempt of a delivery; schedules the next one or records the outcome. */
  async attempt(deliveryId: string): Promise<void> {
    const d = await repo.deliveryForAttempt(this.pool, deliveryId);
    if (!d || d.status !== 'pending') return;
    if (!(await repo.claimAttempt(this.pool, deliveryId, this.config.timeoutMs + 5000))) return;
    const log = this.logger.child({ delivery: deliveryId, subscription: d.subscription_id });
    if (!d.enabled) {
      await repo.recordAttempt(this.pool, deliveryId, {
        status: 'failed',
        responseStatus: null,
        latencyMs: 0,
        error: 'the subscription is disabled',
        nextAttemptAt: null,
      });
      return;
    }
    const headers = signatureHeaders(d.secret, `msg_${d.id}`, Math.floor(Date.now() / 1000), d.body);
    const r = await sendWebhook(d.url, headers, d.body, this.config).catch((err: unknown) => ({
      ok: false,
      status: null,
      latencyMs: 0,
      error: toError(err).message,
    }));
    const attempts = d.attempts + 1;
    const giveUp = !r.ok && attempts >= this.config.maxAttempts;
    this.metrics.webhookAttempt(r.ok ? 'succeeded' : giveUp ? 'given_up' : 'retrying', r.latencyMs / 1000);
    const delay = this.config.retryDelaySeconds * 2 ** (attempts - 1);
    await withTransaction(this.pool, async (tx) => {
      await repo.recordAttempt(tx, deliveryId, {
        status: r.ok ? 'succeeded' : giveUp ? 'failed' : 'pending',
        responseStatus: r.status,
        latencyMs: r.latencyMs,
        error: r.error,
        nextAttemptAt: r.ok || giveUp ? null : new Date(Date.now() + delay * 1000),
      });
      if (r.ok || giveUp) {
        await repo.recordOutcome(tx, d.subscription_id, r.ok, this.config.disableAfterFailures);
      } else {
        await this.queue.enqueue(tx, deliveryId, delay);
      }
    });
    if (!r.ok)
      log.warn({ attempt: attempts, error: r.error, status: r.status, giveUp }, 'webhook delivery failed');
  }
}
