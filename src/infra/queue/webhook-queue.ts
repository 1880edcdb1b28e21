/** The `webhook` queue (pg-boss): deliveries travel apart from processing jobs. */
import type PgBoss from 'pg-boss';
import type { Queryable } from '../../db/pool.ts';
import type { WebhookDeliveryQueue, WebhookJob } from '../../webhooks/ports.ts';

export const WEBHOOK_QUEUE = 'webhook';

export class PgBossWebhookQueue implements WebhookDeliveryQueue {
  private workerId: string | undefined;

  private constructor(private readonly boss: PgBoss) {}

  static async create(boss: PgBoss): Promise<PgBossWebhookQueue> {
    // Retries are ours (each attempt is logged and scheduled explicitly), not pg-boss'.
    await boss.createQueue(WEBHOOK_QUEUE, { name: WEBHOOK_QUEUE, retryLimit: 0 });
    return new PgBossWebhookQueue(boss);
  }

  async enqueue(tx: Queryable, deliveryId: string, delaySeconds = 0): Promise<void> {
    const db = { executeSql: (text: string, values: unknown[]) => tx.query(text, values) };
    await this.boss.send(WEBHOOK_QUEUE, { deliveryId } satisfies WebhookJob, {
      db,
      ...(delaySeconds > 0 ? { startAfter: delaySeconds } : {}),
    });
  }

  async work(concurrency: number, handler: (job: WebhookJob) => Promise<void>): Promise<void> {
    this.workerId = await this.boss.work<WebhookJob>(
      WEBHOOK_QUEUE,
      { batchSize: concurrency, pollingIntervalSeconds: 0.5 },
      async (jobs) => {
        await Promise.all(jobs.map((j) => handler(j.data)));
      },
    );
  }

  wake(): void {
    if (this.workerId !== undefined) this.boss.notifyWorker(this.workerId);
  }

  async stop(): Promise<void> {
    await this.boss.offWork(WEBHOOK_QUEUE);
  }
}
