/**
 * The worker runtime: pulls processing jobs from the queue (the `JobQueue` port; pg-boss in
 * production) and runs the handler with a logger and an abort signal.
 *
 * - Pickup without polling: one dedicated connection LISTENs on `mediary_jobs`; an enqueue NOTIFYs
 *   it (the queue's `wakeChannel`) in the enqueuing transaction, and idle slots fetch at once. The poll is only a fallback (for
 *   delayed retries, which nobody announces).
 * - Fetch, claim and the attempt's start (the `start` hook: the media row → PROCESSING) commit
 *   together, one commit per job. The claim names this worker's LISTEN connection, so a worker
 *   killed mid-job (SIGKILL, OOM) is noticed by any other worker as soon as its connection is gone,
 *   and the job is failed back into the retry path instead of waiting for the queue's own expiry.
 * - A job's completion claims the slot's next job in the same transaction (the queue's complete,
 *   our claim's end, then fetch + claim + start of the next): one commit per job in the steady
 *   state of a burst instead of two. If the claim part fails, the job is completed on its own.
 * - Two lanes (images, videos; one queue each): with more than one slot, slot 0 takes images only,
 *   so a photo never waits for transcodes to end, and the other slots take videos first, so a
 *   steady stream of photos cannot starve the videos (`slotLanes`).
 * - Handlers return an outcome for expected results (completed, failed for a reason the client
 *   must see); they throw only when a retry can help. After the last attempt the queue moves the job
 *   to the dead-letter queue, which this runtime consumes to mark the media FAILED.
 * - Graceful stop: no new jobs; in-flight jobs finish within the grace period, or are aborted and
 *   handed back to the queue (without spending an attempt), so a shutdown never loses a job.
 * - Cancellation: deleting the media aborts its running job (a NOTIFY on `mediary_media_deleted`,
 *   and a periodic check for a missed one); the job is completed as skipped, not retried.
 * - An aborted handler gets a moment to clean up (kill ffmpeg, remove its temp files, delete what
 *   it uploaded) before the job is handed back or failed, and before stop() returns.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { ProcessingConfig } from '../config.ts';
import { withTransaction, type Pool, type PoolClient, type Queryable } from '../db/pool.ts';
import { toError } from '../errors.ts';
import { MEDIA_DELETED_CHANNEL } from '../media/repo.ts';
import type { DeadJob, JobQueue, Lane, ProcessJob, QueuedJob } from './ports.ts';
import * as repo from './repo.ts';

export interface JobContext {
  logger: Logger;
  signal: AbortSignal;
  jobId: string;
  /** 1-based attempt number of this run. */
  attempt: number;
  maxAttempts: number;
  /**
   * Replaces the job's time limit, counted from now (a video job's budget differs from an image's).
   * The queue's expiry must stay above it (see `queueOptions` in app.ts).
   */
  setTimeLimit(seconds: number): void;
}

/** What a handler reports for outcomes a retry cannot change. */
export type JobOutcome =
  | { status: 'completed' }
  | { status: 'skipped'; reason: string }
  | { status: 'failed'; code: string; message: string };

/** `started`: what the worker's `start` hook answered for this job, inside the claim's transaction. */
export type JobHandler<P, S = void> = (payload: P, ctx: JobContext, started: S) => Promise<JobOutcome>;

/** Called for a job that exhausted its attempts (read from the dead-letter queue) with its last error. */
export type DeadJobHandler<P> = (payload: P, error: Error) => Promise<void>;

export interface WorkerDeps<S = void> {
  pool: Pool;
  queue: JobQueue;
  logger: Logger;
  config: Pick<
    ProcessingConfig,
    'concurrency' | 'jobTimeoutSeconds' | 'pollIntervalMs' | 'shutdownGraceSeconds' | 'retryLimit'
  >;
  /**
   * Starts the attempt inside the claim's transaction (the fetch, our claim and the attempt's start
   * commit together: one commit, not two), e.g. the media row's UPLOADED → PROCESSING. Its answer
   * goes to the handler. Rolled back with the claim if it throws: the job stays queued.
   */
  start: (tx: Queryable, job: QueuedJob) => Promise<S>;
  handler: JobHandler<ProcessJob, S>;
  onDead: DeadJobHandler<ProcessJob>;
  /** Records an attempt's error on the media row before the job is failed for a retry. */
  onAttemptError?: (payload: ProcessJob, error: Error, ctx: JobContext) => Promise<void>;
}

type Backend = repo.Backend;

/** A fetched job, claimed, with what its `start` hook answered. */
interface Claimed<S> {
  job: QueuedJob;
  started: S;
}

/** What a slot does after a job: run `next` (claimed with the job's completion), or wait if `fetched` found none. */
interface AfterJob<S> {
  next: Claimed<S> | undefined;
  /** The completion's transaction looked for a next job. */
  fetched: boolean;
  /** The wake-up generation before it looked. */
  seen: number;
}

interface InFlight {
  jobId: string;
  mediaId: string;
  abort: AbortController;
  done: Promise<void>;
}

/** The job ran past its time limit. */
export class JobTimeoutError extends Error {
  override readonly name = 'JobTimeoutError';
}

/** The job's media was deleted while it ran: nothing to retry. */
export class JobCancelledError extends Error {
  override readonly name = 'JobCancelledError';
}

/**
 * How long an aborted handler may take to clean up before the worker moves on without it (sharp
 * cannot be interrupted; ffmpeg is killed at once and its temp files go in milliseconds).
 */
const ABORT_SETTLE_MS = 10_000;

/** The worker running a job died (its connection is gone). */
export class WorkerLostError extends Error {
  override readonly name = 'WorkerLostError';
}

class ShutdownAbort extends Error {
  constructor() {
    super('The worker is shutting down.');
    this.name = 'ShutdownAbort';
  }
}

const DEAD_BATCH = 10;

/**
 * The lanes slot `index` of `concurrency` takes jobs from, in order of preference: a lone slot
 * takes both, images first; otherwise slot 0 takes images only and the others videos first.
 */
export function slotLanes(index: number, concurrency: number): readonly Lane[] {
  if (concurrency <= 1) return ['image', 'video'];
  return index === 0 ? ['image'] : ['video', 'image'];
}

export class Worker<S = void> {
  private stopping = false;
  private listener: PoolClient | undefined;
  private backend: Backend | undefined;
  /** Bumped by every wake-up, so a slot that fetched nothing just before one does not sleep through it. */
  private generation = 0;
  private readonly sleepers = new Set<() => void>();
  private readonly inFlight = new Map<string, InFlight>();
  private readonly loops: Promise<void>[] = [];
  private readonly log: Logger;
  /**
   * Bumped when a dead letter may have appeared (our last attempt failed, a dead worker's job was
   * failed back): the dead-letter loop sleeps on this, not on enqueue wake-ups, which say nothing
   * about dead letters (it used to read the dead-letter queue once per enqueue).
   */
  private deadWake = 0;
  private readonly deadSleepers = new Set<() => void>();
  private stopped: Promise<void> | undefined;
  private readonly halt = new AbortController();

  private constructor(private readonly deps: WorkerDeps<S>) {
    this.log = deps.logger.child({ component: 'worker' });
  }

  static async start<S>(deps: WorkerDeps<S>): Promise<Worker<S>> {
    const w = new Worker<S>(deps);
    await w.connectListener();
    for (let i = 0; i < deps.config.concurrency; i++) w.loops.push(w.slot(i));
    w.loops.push(w.deadLetterLoop(), w.reaperLoop(), w.listenerWatch());
    w.log.info({ concurrency: deps.config.concurrency }, 'worker started');
    return w;
  }

  /** Number of jobs running right now (tests, health). */
  get busy(): number {
    return this.inFlight.size;
  }

  // ---- wake-ups ---------------------------------------------------------------------------

  private wake(): void {
    this.generation++;
    for (const resolve of this.sleepers) resolve();
    this.sleepers.clear();
  }

  /** Sleeps until woken, `ms` passed, or stop. Returns at once if a wake-up happened since `seen`. */
  private async idle(ms: number, seen: number): Promise<void> {
    if (this.stopping || this.generation !== seen) return;
    await sleepIn(this.sleepers, ms);
  }

  /** A sleep that ends early when the worker stops. */
  private async pause(ms: number): Promise<void> {
    await sleep(ms, undefined, { signal: this.halt.signal }).catch(() => undefined);
  }

  // ---- the LISTEN connection ------------------------------------------------------------------

  private async connectListener(): Promise<void> {
    const client = await this.deps.pool.connect();
    try {
      client.on('notification', (msg) => {
        if (msg.channel === this.deps.queue.wakeChannel) this.wake();
        else if (msg.channel === MEDIA_DELETED_CHANNEL && msg.payload) this.cancelMedia(msg.payload);
      });
      client.on('error', (err) => {
        this.log.warn({ err }, 'worker LISTEN connection lost; reconnecting');
        this.dropListener(client, err);
      });
      await client.query(`LISTEN ${this.deps.queue.wakeChannel}`);
      await client.query(`LISTEN ${MEDIA_DELETED_CHANNEL}`);
      // backend_start as text: a JS Date would drop the microseconds the reaper compares.
      const { rows } = await client.query<{ pid: number; backend_start: string }>(
        'SELECT pid, backend_start::text AS backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()',
      );
      const previous = this.backend;
      this.listener = client;
      this.backend = { pid: rows[0]!.pid, start: rows[0]!.backend_start };
      // Jobs claimed through the old connection are still ours: move the claims over.
      if (previous) await repo.moveClaims(this.deps.pool, previous, this.backend);
    } catch (err) {
      client.release(toError(err));
      throw err;
    }
    // Something may have been enqueued while we were not listening.
    this.wake();
  }

  private dropListener(client: PoolClient, err?: Error): void {
    if (this.listener !== client) return;
    this.listener = undefined;
    client.removeAllListeners('notification');
    client.release(err ?? true);
  }

  /** Keeps the LISTEN connection up; slots do not claim jobs while it is down. */
  private async listenerWatch(): Promise<void> {
    while (!this.stopping) {
      await this.pause(1000);
      if (this.stopping || this.listener) continue;
      try {
        await this.connectListener();
        this.log.info('worker LISTEN connection restored');
      } catch (err) {
        this.log.warn({ err }, 'cannot reconnect the worker LISTEN connection yet');
      }
    }
  }

  // ---- processing slots -------------------------------------------------------------------

  private async slot(index: number): Promise<void> {
    const lanes = slotLanes(index, this.deps.config.concurrency);
    // The job the previous one's completion transaction claimed (see `finish`), if any.
    let next: Claimed<S> | undefined;
    while (!this.stopping) {
      let job = next;
      next = undefined;
      const seen = this.generation;
      if (!job) {
        try {
          job = await this.claimNext(lanes);
        } catch (err) {
          this.log.warn({ err, slot: index }, 'could not fetch a job; retrying shortly');
          await this.pause(Math.min(1000, this.deps.config.pollIntervalMs));
          continue;
        }
        if (!job) {
          await this.idle(this.deps.config.pollIntervalMs, seen);
          continue;
        }
      }
      const after = await this.run(job, lanes);
      next = after.next;
      // The completion looked for a next job and there was none: wait, as after an empty fetch.
      if (after.fetched && !next) await this.idle(this.deps.config.pollIntervalMs, after.seen);
    }
    // Claimed by a completion that raced with stop(): hand it back untouched.
    if (next) await this.handBack(next.job);
  }

  /** Fetches one job of `lanes`, records our claim on it and starts its attempt, in one transaction. */
  private async claimNext(lanes: readonly Lane[]): Promise<Claimed<S> | undefined> {
    if (!this.backend || this.stopping) return undefined;
    return withTransaction(this.deps.pool, (tx) => this.claimIn(tx, lanes));
  }

  /** The claim's statements, in the caller's transaction: fetch, claim, start. */
  private async claimIn(tx: Queryable, lanes: readonly Lane[]): Promise<Claimed<S> | undefined> {
    const backend = this.backend;
    if (!backend || this.stopping) return undefined;
    const job = await this.deps.queue.fetchProcessing(tx, lanes);
    if (!job) return undefined;
    await repo.insertClaim(tx, job, backend);
    return { job, started: await this.deps.start(tx, job) };
  }

  /**
   * Ends a job that ran to an outcome: the queue's completion and our claim's end, and (unless
   * stopping) the claim of the slot's next job, in one transaction: one commit and two round trips
   * (BEGIN, COMMIT) fewer per job than ending and claiming apart. If that transaction fails, the
   * job is ended on its own (a failed claim must not cost the finished job an attempt); if that
   * fails too, the caller fails the job for a retry.
   */
  private async finish(
    job: QueuedJob,
    outcome: JobOutcome,
    logger: Logger,
    lanes: readonly Lane[],
  ): Promise<AfterJob<S>> {
    const seen = this.generation;
    const end = async (tx: Queryable) => {
      await this.deps.queue.complete(job, outcome, tx);
      await repo.deleteClaim(tx, job.id);
    };
    try {
      return await withTransaction(this.deps.pool, async (tx) => {
        await end(tx);
        const fetched = !this.stopping && this.backend !== undefined;
        return { next: fetched ? await this.claimIn(tx, lanes) : undefined, fetched, seen };
      });
    } catch (err) {
      logger.warn({ err }, 'could not end the job and claim the next together; ending it alone');
      await withTransaction(this.deps.pool, end);
      return { next: undefined, fetched: false, seen };
    }
  }

  /** Gives a claimed, not yet started job back to the queue without spending an attempt. */
  private async handBack(job: QueuedJob): Promise<void> {
    try {
      await this.deps.queue.release(job);
      await repo.deleteClaim(this.deps.pool, job.id);
    } catch (err) {
      // The claim stays; the reaper fails the job back once this worker's connection is gone.
      this.log.warn({ err, jobId: job.id }, 'could not hand a claimed job back');
    }
  }

  /** Runs a claimed job to its end; answers the next job (of `lanes`) its completion claimed, if any. */
  private async run({ job, started: startedWith }: Claimed<S>, lanes: readonly Lane[]): Promise<AfterJob<S>> {
    const abort = new AbortController();
    const limit = (seconds: number) =>
      setTimeout(
        () => abort.abort(new JobTimeoutError(`The job did not finish within ${seconds} s.`)),
        seconds * 1000,
      );
    let timeout = limit(this.deps.config.jobTimeoutSeconds);
    const ctx: JobContext = {
      logger: this.log.child({ jobId: job.id, mediaId: job.data.mediaId, attempt: job.attempt }),
      signal: abort.signal,
      jobId: job.id,
      attempt: job.attempt,
      maxAttempts: job.maxAttempts,
      setTimeLimit: (seconds) => {
        clearTimeout(timeout);
        if (!abort.signal.aborted) timeout = limit(seconds);
      },
    };
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    this.inFlight.set(job.id, { jobId: job.id, mediaId: job.data.mediaId, abort, done });
    const started = Date.now();
    ctx.logger.info('job started');
    const work = this.deps.handler(job.data, ctx, startedWith);
    let claimed = true;
    let after: AfterJob<S> = { next: undefined, fetched: false, seen: this.generation };
    try {
      const outcome = await untilAborted(work, abort.signal);
      after = await this.finish(job, outcome, ctx.logger, lanes);
      claimed = false;
      ctx.logger.info({ outcome: outcome.status, ms: Date.now() - started }, 'job finished');
    } catch (caught) {
      // Let the aborted handler clean up first: a worker that exits (or a retry that starts) while
      // it still runs would leave its temp files and uploads behind.
      if (abort.signal.aborted) await settled(work, ABORT_SETTLE_MS, ctx.logger);
      await this.afterError(job, ctx, toError(caught), abort.signal);
    } finally {
      clearTimeout(timeout);
      if (claimed) {
        await repo.deleteClaim(this.deps.pool, job.id).catch((err: unknown) => {
          ctx.logger.warn({ err }, 'could not remove the job claim; the reaper will');
        });
      }
      this.inFlight.delete(job.id);
      resolveDone();
    }
    return after;
  }

  private async afterError(job: QueuedJob, ctx: JobContext, err: Error, signal: AbortSignal): Promise<void> {
    try {
      if (signal.aborted && signal.reason instanceof ShutdownAbort) {
        // Not the job's fault: hand it back untouched for the next worker.
        await this.deps.queue.release(job);
        ctx.logger.warn('job handed back to the queue at shutdown');
        return;
      }
      if (signal.aborted && signal.reason instanceof JobCancelledError) {
        const outcome: JobOutcome = { status: 'skipped', reason: signal.reason.message };
        await this.deps.queue.complete(job, outcome);
        ctx.logger.info('job cancelled');
        return;
      }
      const error = signal.aborted ? toError(signal.reason) : err;
      const last = ctx.attempt >= ctx.maxAttempts;
      ctx.logger[last ? 'error' : 'warn']({ err: error, last }, 'job attempt failed');
      await this.deps.onAttemptError?.(job.data, error, ctx);
      await this.deps.queue.fail(job, { message: error.message, name: error.name });
      if (last) this.wakeDeadLetters();
    } catch (failErr) {
      // The claim stays; the reaper fails the job once this connection is replaced.
      ctx.logger.error({ err: failErr }, 'could not record the job failure');
    }
  }

  // ---- dead letters -----------------------------------------------------------------------

  private wakeDeadLetters(): void {
    this.deadWake++;
    for (const resolve of this.deadSleepers) resolve();
    this.deadSleepers.clear();
  }

  private async deadLetterLoop(): Promise<void> {
    while (!this.stopping) {
      const wakes = this.deadWake;
      try {
        const jobs = await this.deps.queue.fetchDead(DEAD_BATCH);
        for (const job of jobs) {
          try {
            await this.deps.onDead(job.data, deadError(job.failure));
            await this.deps.queue.completeDead(job.id);
          } catch (err) {
            this.log.error({ err, jobId: job.id }, 'could not handle a dead-lettered job');
            await this.deps.queue.failDead(job.id, { message: toError(err).message });
          }
        }
        if (jobs.length === DEAD_BATCH) continue;
      } catch (err) {
        this.log.warn({ err }, 'could not read the dead-letter queue');
      }
      // Dead letters come from our own failures (woken) or other workers' (the poll finds them).
      if (this.deadWake === wakes && !this.stopping) {
        await sleepIn(this.deadSleepers, this.deps.config.pollIntervalMs);
      }
    }
  }

  // ---- cancellation -------------------------------------------------------------------------------

  /** Aborts the running jobs of a media that was deleted. */
  private cancelMedia(mediaId: string): void {
    for (const j of this.inFlight.values()) {
      if (j.mediaId === mediaId && !j.abort.signal.aborted) {
        this.log.info({ jobId: j.jobId, mediaId }, 'media deleted while processing; cancelling the job');
        j.abort.abort(new JobCancelledError('The media was deleted while it was being processed.'));
      }
    }
  }

  /** Catches deletions whose NOTIFY this worker missed (its LISTEN connection was down). */
  private async cancelDeleted(): Promise<void> {
    const ids = [...new Set([...this.inFlight.values()].map((j) => j.mediaId))];
    if (ids.length === 0) return;
    const { rows } = await this.deps.pool.query<{ id: string }>(
      `SELECT i.id FROM unnest($1::uuid[]) AS i(id)
       WHERE NOT EXISTS (SELECT 1 FROM media m WHERE m.id = i.id AND m.status <> 'DELETED')`,
      [ids],
    );
    for (const { id } of rows) this.cancelMedia(id);
  }

  // ---- reaping jobs of dead workers -------------------------------------------------------------

  private async reaperLoop(): Promise<void> {
    const every = Math.max(1000, Math.min(5000, this.deps.config.pollIntervalMs));
    while (!this.stopping) {
      await this.pause(every);
      if (this.stopping) break;
      try {
        await this.cancelDeleted();
      } catch (err) {
        this.log.warn({ err }, 'could not check for deleted media');
      }
      try {
        const orphans = await repo.takeOrphanedClaims(this.deps.pool);
        for (const job of orphans) {
          this.log.warn(
            { jobId: job.id },
            'the worker running this job is gone; handing it back for a retry',
          );
          const lost = new WorkerLostError('The worker processing this job stopped unexpectedly.');
          await this.deps.queue.fail(job, { message: lost.message, name: lost.name });
        }
        if (orphans.length > 0) {
          this.wake(); // their retries are due now
          this.wakeDeadLetters();
        }
      } catch (err) {
        this.log.warn({ err }, 'could not check for jobs of dead workers');
      }
    }
  }

  // ---- stop -------------------------------------------------------------------------------------

  /** Stops taking jobs, lets running ones finish (or hands them back), and closes the connection. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.stopping = true;
      this.halt.abort();
      this.wake();
      this.wakeDeadLetters();
      const running = [...this.inFlight.values()];
      if (running.length > 0) {
        this.log.info({ jobs: running.length }, 'waiting for running jobs to finish');
        const grace = sleep(this.deps.config.shutdownGraceSeconds * 1000, 'timeout' as const);
        const all = Promise.all(running.map((j) => j.done)).then(() => 'done' as const);
        if ((await Promise.race([all, grace])) === 'timeout') {
          for (const j of this.inFlight.values()) j.abort.abort(new ShutdownAbort());
          await all;
        }
      }
      await Promise.all(this.loops);
      if (this.listener) this.dropListener(this.listener);
      this.log.info('worker stopped');
    })();
    return this.stopped;
  }
}

/** Sleeps `ms`, or until one of `sleepers` (where it adds itself) is called. */
function sleepIn(sleepers: Set<() => void>, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      resolve();
    }
    sleepers.add(done);
  });
}

/**
 * Settles with `work`, or rejects as soon as `signal` aborts (sharp cannot be interrupted; its
 * late result is dropped).
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(toError(signal.reason));
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Waits for `work` to settle (its outcome no longer matters), at most `ms`. */
async function settled(work: Promise<unknown>, ms: number, logger: Logger): Promise<void> {
  const timer = new AbortController();
  const late = await Promise.race([
    work.then(
      () => false,
      () => false,
    ),
    sleep(ms, true, { signal: timer.signal }).catch(() => false),
  ]);
  timer.abort();
  if (late) logger.warn({ ms }, 'the aborted job did not finish cleaning up in time; moving on');
}

/** The last attempt's error, rebuilt from what the queue kept of it. */
function deadError(failure: DeadJob['failure']): Error {
  if (failure === 'expired') return new JobTimeoutError('The job did not finish within its time limit.');
  if (failure === undefined) return new Error('Processing failed.');
  const err = new Error(failure.message);
  if (failure.name !== undefined) err.name = failure.name;
  return err;
}
