/** What webhooks need of a queue (implemented over pg-boss in src/infra/queue/webhook-queue.ts). */
import type { Queryable } from '../db/pool.ts';

export interface WebhookJob {
  deliveryId: string;
}

export interface WebhookDeliveryQueue {
  /** Enqueues inside the caller's transaction; `delaySeconds` for a retry. */
  enqueue(tx: Queryable, deliveryId: string, delaySeconds?: number): Promise<void>;
  /** Runs `handler` for queued deliveries, `concurrency` at a time. */
  work(concurrency: number, handler: (job: WebhookJob) => Promise<void>): Promise<void>;
  /** Fetch at once (a delivery was just enqueued by this process). */
  wake(): void;
  stop(): Promise<void>;
}
