import PgBoss from 'pg-boss';
import type { Logger } from 'pino';
import type { Pool, Queryable } from '../db/pool.ts';

export const PROCESS_QUEUE = 'media-process';
export const DEAD_LETTER_QUEUE = 'media-process-dead';
/** NOTIFY channel: an enqueue wakes idle workers at once instead of waiting for their next poll. */
export const WAKE_CHANNEL = 'mediary_jobs';

export interface ProcessJob {
  mediaId: string;
}

export interface QueueOptions {
  retryLimit: number;
  retryDelaySeconds: number;
  /** pg-boss fails an active job after this long (a backstop; workers time their jobs out first). */
  expireInSeconds?: number;
}

/**
 * pg-boss in the application's own Postgres. Enqueueing takes the caller's transaction client,
 * so "UPLOADED but no job" cannot happen: both commit or neither does.
 */
export class JobQueue {
  private constructor(readonly boss: PgBoss) {}

  /**
   * `owner`: this process owns the queue's retry policy (the API server, which also enqueues and
   * migrates). Other processes (`mediary worker`) only make sure the queues exist: a worker started
   * with different settings must not silently rewrite the policy every other process relies on.
   */
  static async start(
    pool: Pool,
    logger: Logger,
    opts: QueueOptions,
    { owner = true }: { owner?: boolean } = {},
  ): Promise<JobQueue> {
    const boss = new PgBoss({
      db: { executeSql: (text: string, values: unknown[]) => pool.query(text, values) },
      supervise: true,
      schedule: false,
    });
    boss.on('error', (err) => logger.error({ err }, 'job queue error'));
    await boss.start();
    await boss.createQueue(DEAD_LETTER_QUEUE);
    const policy = {
      name: PROCESS_QUEUE,
      retryLimit: opts.retryLimit,
      retryDelay: opts.retryDelaySeconds,
      retryBackoff: true,
      deadLetter: DEAD_LETTER_QUEUE,
      ...(opts.expireInSeconds !== undefined ? { expireInSeconds: opts.expireInSeconds } : {}),
    };
    await boss.createQueue(PROCESS_QUEUE, policy);
    if (owner) {
      // createQueue keeps an existing queue as it was: apply the configured policy to new jobs.
      await boss.updateQueue(PROCESS_QUEUE, policy);
    } else {
      const current = await boss.getQueue(PROCESS_QUEUE);
      if (current && (current.retryLimit !== policy.retryLimit || current.retryDelay !== policy.retryDelay)) {
        logger.warn(
          {
            queue: { retryLimit: current.retryLimit, retryDelay: current.retryDelay },
            configured: { retryLimit: policy.retryLimit, retryDelay: policy.retryDelay },
          },
          'this worker’s retry settings differ from the queue’s; the API server’s settings apply',
        );
      }
    }
    return new JobQueue(boss);
  }

  /** Enqueues processing for `mediaId` inside the caller's transaction. */
  async enqueueProcessing(tx: Queryable, mediaId: string): Promise<void> {
    const db = { executeSql: (text: string, values: unknown[]) => tx.query(text, values) };
    await this.boss.send(PROCESS_QUEUE, { mediaId } satisfies ProcessJob, { db });
    await tx.query('SELECT pg_notify($1, $2)', [WAKE_CHANNEL, PROCESS_QUEUE]);
  }

  async stop(): Promise<void> {
    await this.boss.stop({ graceful: true, close: false, wait: true });
  }
}
