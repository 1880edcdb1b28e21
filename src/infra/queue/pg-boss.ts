/**
 * The job queue adapter: pg-boss in the application's own Postgres (implements `JobQueue`,
 * src/processing/ports.ts). The only module that imports pg-boss or touches its tables.
 *
 * Relies on pg-boss 10.4.x (package-lock.json): its `pgboss.job` table and column names (`state`,
 * `start_after`, `started_on`, `retry_count`), the `retry` state, and the output pg-boss writes
 * when it expires an active job (`{ value: { message: "...timeout..." } }`). An upgrade must
 * re-check `release` and `deadFailure` below; test/processing/worker.test.ts covers both.
 */
import PgBoss from 'pg-boss';
import type { Logger } from 'pino';
import { named } from '../../db/named.ts';
import type { Pool, Queryable } from '../../db/pool.ts';
import type { DeadJob, JobQueue, JobRef, Lane, ProcessJob, QueuedJob } from '../../processing/ports.ts';
import { PgBossWebhookQueue } from './webhook-queue.ts';

export type { ProcessJob };

/** The image lane's queue (it kept the name of the single queue there was; see `LANE_QUEUES`). */
export const PROCESS_QUEUE = 'media-process';
export const VIDEO_QUEUE = 'media-process-video';
/**
 * One pg-boss queue per lane (src/processing/ports.ts, `Lane`). Jobs queued before the lanes
 * existed are all in `media-process`, videos included: the image lane runs them, as before.
 */
export const LANE_QUEUES: Readonly<Record<Lane, string>> = { image: PROCESS_QUEUE, video: VIDEO_QUEUE };
export const DEAD_LETTER_QUEUE = 'media-process-dead';
/** NOTIFY channel: an enqueue wakes idle workers at once instead of waiting for their next poll. */
export const WAKE_CHANNEL = 'mediary_jobs';

export interface QueueOptions {
  retryLimit: number;
  retryDelaySeconds: number;
  /** pg-boss fails an active job after this long (a backstop; workers time their jobs out first). */
  expireInSeconds?: number;
}

/**
 * pg-boss statements on the given connection (the caller's transaction). `prepared`: those with
 * parameters as named statements (src/db/named.ts): pg-boss's SQL is a fixed set of texts, and
 * planning its fetch over the partitioned job table cost Postgres ≈ 0.5 ms a call.
 */
function bossDb(db: Queryable, prepared: boolean): PgBoss.Db {
  return {
    executeSql: (text: string, values: unknown[]) =>
      prepared && values?.length ? db.query(named(text, values)) : db.query(text, values),
  };
}

/**
 * Enqueueing takes the caller's transaction client, so "UPLOADED but no job" cannot happen: both
 * commit or neither does.
 */
export class PgBossQueue implements JobQueue {
  readonly wakeChannel = WAKE_CHANNEL;

  private constructor(
    private readonly boss: PgBoss,
    private readonly pool: Pool,
    private readonly prepared: boolean,
  ) {}

  private via(tx: Queryable): PgBoss.Db {
    return bossDb(tx, this.prepared);
  }

  /** The webhook deliveries' queue (issue 20), on this same pg-boss instance. */
  webhookQueue(): Promise<PgBossWebhookQueue> {
    return PgBossWebhookQueue.create(this.boss);
  }

  /**
   * `owner`: this process owns the queue's retry policy (the API server, which also enqueues and
   * migrates). Other processes (`mediary worker`) only make sure the queues exist: a worker started
   * with different settings must not silently rewrite the policy every other process relies on.
   */
  static async start(
    pool: Pool,
    logger: Logger,
    opts: QueueOptions,
    { owner = true, prepared = false }: { owner?: boolean; prepared?: boolean } = {},
  ): Promise<PgBossQueue> {
    const boss = new PgBoss({
      db: bossDb(pool, prepared),
      supervise: true,
      schedule: false,
    });
    boss.on('error', (err) => logger.error({ err }, 'job queue error'));
    await boss.start();
    await boss.createQueue(DEAD_LETTER_QUEUE);
    for (const name of Object.values(LANE_QUEUES)) {
      const policy = {
        name,
        retryLimit: opts.retryLimit,
        retryDelay: opts.retryDelaySeconds,
        retryBackoff: true,
        deadLetter: DEAD_LETTER_QUEUE,
        ...(opts.expireInSeconds !== undefined ? { expireInSeconds: opts.expireInSeconds } : {}),
      };
      await boss.createQueue(name, policy);
      if (owner) {
        // createQueue keeps an existing queue as it was: apply the configured policy to new jobs.
        await boss.updateQueue(name, policy);
        continue;
      }
      const current = await boss.getQueue(name);
      if (current && (current.retryLimit !== policy.retryLimit || current.retryDelay !== policy.retryDelay)) {
        logger.warn(
          {
            queue: { name, retryLimit: current.retryLimit, retryDelay: current.retryDelay },
            configured: { retryLimit: policy.retryLimit, retryDelay: policy.retryDelay },
          },
          'this worker’s retry settings differ from the queue’s; the API server’s settings apply',
        );
      }
    }
    return new PgBossQueue(boss, pool, prepared);
  }

  async enqueueProcessing(tx: Queryable, mediaId: string, lane: Lane): Promise<void> {
    await this.boss.send(LANE_QUEUES[lane], { mediaId } satisfies ProcessJob, { db: this.via(tx) });
    await tx.query('SELECT pg_notify($1, $2)', [WAKE_CHANNEL, LANE_QUEUES[lane]]);
  }

  /**
   * Seconds the oldest due job of `lane` has waited (0 when none waits): one lookup at the head
   * of pg-boss' `job_i5` index (name, start_after) of jobs not yet active.
   */
  async oldestWaitingSeconds(lane: Lane): Promise<number> {
    const { rows } = await this.pool.query<{ age: number | null }>(
      `SELECT EXTRACT(EPOCH FROM now() - start_after)::float8 AS age FROM pgboss.job
        WHERE name = $1 AND state < 'active' ORDER BY start_after LIMIT 1`,
      [LANE_QUEUES[lane]],
    );
    return Math.max(0, rows[0]?.age ?? 0);
  }

  async fetchProcessing(tx: Queryable, lanes: readonly Lane[]): Promise<QueuedJob | undefined> {
    for (const lane of lanes) {
      const [job] = await this.boss.fetch<ProcessJob>(LANE_QUEUES[lane], {
        batchSize: 1,
        includeMetadata: true,
        db: this.via(tx),
      });
      if (job) {
        const attempt = job.retryCount + 1;
        return { id: job.id, lane, data: job.data, attempt, maxAttempts: job.retryLimit + 1 };
      }
    }
    return undefined;
  }

  async complete(job: JobRef, output: object, tx?: Queryable): Promise<void> {
    await this.boss.complete(LANE_QUEUES[job.lane], job.id, output, tx ? { db: this.via(tx) } : undefined);
  }

  async fail(job: JobRef, error: { message: string; name: string }): Promise<void> {
    await this.boss.fail(LANE_QUEUES[job.lane], job.id, error);
  }

  /**
   * Hands an active job back to the queue without spending an attempt (worker shutdown): the next
   * fetch increments retry_count again, so it is taken back here. pg-boss has no API for this, so
   * it is one UPDATE of its job table (see the version note at the top).
   */
  async release(job: JobRef): Promise<void> {
    await this.pool.query(
      `UPDATE pgboss.job SET state = 'retry', start_after = now(),
         started_on = CASE WHEN retry_count = 0 THEN NULL ELSE started_on END,
         retry_count = GREATEST(retry_count - 1, 0)
       WHERE name = $1 AND id = $2 AND state = 'active'`,
      [LANE_QUEUES[job.lane], job.id],
    );
    await this.pool.query('SELECT pg_notify($1, $2)', [WAKE_CHANNEL, LANE_QUEUES[job.lane]]);
  }

  async fetchDead(limit: number): Promise<DeadJob[]> {
    const jobs = await this.boss.fetch<ProcessJob>(DEAD_LETTER_QUEUE, {
      batchSize: limit,
      includeMetadata: true,
    });
    return jobs.map((job) => ({ id: job.id, data: job.data, failure: deadFailure(job.output) }));
  }

  async completeDead(jobId: string): Promise<void> {
    await this.boss.complete(DEAD_LETTER_QUEUE, jobId);
  }

  async failDead(jobId: string, error: { message: string }): Promise<void> {
    await this.boss.fail(DEAD_LETTER_QUEUE, jobId, error);
  }

  async stop(): Promise<void> {
    await this.boss.stop({ graceful: true, close: false, wait: true });
  }
}

/** The last attempt's failure, from the job output: our fail data, or pg-boss' own expiry. */
function deadFailure(output: unknown): DeadJob['failure'] {
  const o = output as { message?: unknown; name?: unknown; value?: { message?: unknown } } | null | undefined;
  if (typeof o?.message === 'string') {
    return typeof o.name === 'string' ? { message: o.message, name: o.name } : { message: o.message };
  }
  if (typeof o?.value?.message === 'string' && /timeout/i.test(o.value.message)) return 'expired';
  return undefined;
}

/** One queue's jobs by state (metrics): `ready` may run now, `delayed` waits for a retry delay. */
export interface QueueStats {
  queue: string;
  ready: number;
  delayed: number;
  active: number;
  /** Seconds the longest-waiting ready job has been runnable (0 when none is). */
  oldestReadySeconds: number;
}

/**
 * Unfinished jobs per queue, read from pg-boss' job table (sampled on each metrics scrape). Every
 * queue is listed, also an empty one, so its gauges go back to 0.
 */
export async function queueStats(db: Queryable): Promise<QueueStats[]> {
  const { rows } = await db.query<{
    queue: string;
    ready: number;
    delayed: number;
    active: number;
    oldest: number | null;
  }>(
    `SELECT q.name AS queue,
            count(*) FILTER (WHERE j.state IN ('created', 'retry') AND j.start_after <= now())::int AS ready,
            count(*) FILTER (WHERE j.state IN ('created', 'retry') AND j.start_after > now())::int AS delayed,
            count(*) FILTER (WHERE j.state = 'active')::int AS active,
            EXTRACT(EPOCH FROM now() - min(j.start_after)
              FILTER (WHERE j.state IN ('created', 'retry') AND j.start_after <= now()))::float8 AS oldest
       FROM pgboss.queue q
       LEFT JOIN pgboss.job j ON j.name = q.name AND j.state IN ('created', 'retry', 'active')
      GROUP BY q.name`,
  );
  return rows.map((r) => ({
    queue: r.queue,
    ready: r.ready,
    delayed: r.delayed,
    active: r.active,
    oldestReadySeconds: Math.max(0, r.oldest ?? 0),
  }));
}
