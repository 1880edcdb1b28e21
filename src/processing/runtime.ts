/**
 * Wires the image and video jobs and the dead-letter handling into a worker (used by serve and
 * `mediary worker`). The composition root of processing: the one module here that imports the
 * adapters (src/infra/) and hands them to the jobs as their ports.
 */
import os from 'node:os';
import type { Logger } from 'pino';
import type { ProcessingConfig } from '../config.ts';
import type { Pool, Queryable } from '../db/pool.ts';
import { findMedia, type MediaRecord } from '../media/repo.ts';
import { NO_METRICS, type MediaKind, type Metrics, type ProcessingOutcome } from '../metrics/port.ts';
import { removeOrphans } from '../storage/scratch.ts';
import type { ObjectStore } from '../storage/types.ts';
import { exifrReader } from '../infra/imaging/exif.ts';
import { HEIF_WORK_PREFIX, HeifConverter } from '../infra/imaging/heif.ts';
import { sharpImaging } from '../infra/imaging/sharp-imaging.ts';
import { logTools, resolveProcessingTools, withTools } from '../infra/tools.ts';
import { FfmpegTranscoder } from '../infra/video/ffmpeg.ts';
import { PROCESS_QUEUE } from '../infra/queue/pg-boss.ts';
import { ClamdClient } from '../infra/clamav.ts';
import { ImageJob } from './image-job.ts';
import { publicMessage } from './job-kit.ts';
import { MalwareScanStep } from './malware-scan.ts';
import { MemoryBudget } from './memory-budget.ts';
import type { JobQueue, ProcessJob, QueuedJob } from './ports.ts';
import { pgQuarantineRecords, pgRecords } from './records.ts';
import * as repo from './repo.ts';
import { VIDEO_WORK_PREFIX, VideoJob } from './video-job.ts';
import { JobCancelledError, JobTimeoutError, Worker as JobWorker, type JobHandler } from './worker.ts';

/** The processing worker: its `start` hook answers the media row whose attempt it started. */
export type Worker = JobWorker<MediaRecord | undefined>;

export interface WorkerSetup {
  pool: Pool;
  queue: JobQueue;
  store: ObjectStore;
  config: ProcessingConfig;
  logger: Logger;
  /** Processing durations and outcomes, dead letters (default: none). */
  metrics?: Metrics;
}

export async function startWorker(setup: WorkerSetup): Promise<Worker> {
  const { pool, queue, store, logger } = setup;
  const tools = await resolveProcessingTools(setup.config);
  logTools(logger, tools);
  // The jobs read the config object they were given (not a copy: what it says at each job holds);
  // the transcoder runs the tools chosen here (the configured/system ones, else the npm-shipped ones).
  const config = setup.config;
  const chosen = withTools(setup.config, tools).video;
  const heif = tools.heif?.decoder ?? new HeifConverter(config.heifConvert, config.jobTimeoutSeconds * 1000);
  // Work directories of jobs a killed process of this host was running hold whole originals.
  const orphans =
    (await removeOrphans(config.video.tmpDir ?? os.tmpdir(), VIDEO_WORK_PREFIX)) +
    (await removeOrphans(os.tmpdir(), HEIF_WORK_PREFIX));
  if (orphans > 0) logger.info({ removed: orphans }, 'removed work directories left by a killed worker');
  const budget = new MemoryBudget(config.memoryBudgetBytes);
  const records = pgRecords(pool);
  const image = new ImageJob({
    store,
    records,
    imaging: sharpImaging,
    heif,
    exif: exifrReader,
    config,
    budget,
  });
  const transcoder = new FfmpegTranscoder({
    ffmpeg: chosen.ffmpegPath,
    ffprobe: chosen.ffprobePath,
  });
  const video = new VideoJob({
    store,
    records,
    imaging: sharpImaging,
    transcoder,
    config,
    tmpDir: config.video.tmpDir,
  });
  const scan = malwareScan(setup);
  // One queue. One statement starts the attempt and loads the row, in the claim's transaction
  // (worker.ts `start`); the media type picks the job.
  const metrics = setup.metrics ?? NO_METRICS;
  metrics.jobDeadLettered(PROCESS_QUEUE, 0);
  const start = (tx: Queryable, job: QueuedJob) => repo.startProcessing(tx, job.data.mediaId, job.attempt);
  const handler: JobHandler<ProcessJob, MediaRecord | undefined> = async (payload, ctx, media) => {
    const started = performance.now();
    let kind: MediaKind | undefined;
    const seconds = () => (performance.now() - started) / 1000;
    try {
      if (!media) {
        const now = await findMedia(pool, payload.mediaId);
        metrics.processingFinished(undefined, 'skipped', seconds());
        return { status: 'skipped', reason: `media is ${now?.status ?? 'gone'}` };
      }
      kind = media.media_type;
      // Scanned before the job reads it (MALWARE_SCAN): infected or unscannable ends here.
      const refused = await scan?.check(media, ctx);
      const outcome =
        refused ?? (await (kind === 'video' ? video.handle(media, ctx) : image.handle(media, ctx)));
      metrics.processingFinished(
        kind,
        outcome.status,
        seconds(),
        outcome.status === 'failed' ? outcome.code : undefined,
      );
      return outcome;
    } catch (err) {
      metrics.processingFinished(kind, abortOutcome(ctx.signal), seconds());
      throw err;
    }
  };
  return JobWorker.start({
    pool,
    queue,
    logger,
    config,
    start,
    handler,
    onAttemptError: (payload, err) =>
      repo.recordAttemptError(pool, payload.mediaId, {
        code: 'processing_error',
        message: publicMessage(err),
      }),
    onDead: async (payload, err) => {
      const failed = await repo.markProcessingFailed(pool, payload.mediaId, {
        code: 'processing_failed',
        message: `Processing failed after every attempt: ${publicMessage(err)}`,
      });
      metrics.jobDeadLettered(PROCESS_QUEUE);
      if (failed) logger.error({ mediaId: payload.mediaId }, 'processing gave up; media marked FAILED');
    },
  });
}

/** How an attempt that threw ended: aborted by the worker (and why), or an error of its own. */
function abortOutcome(signal: AbortSignal): ProcessingOutcome {
  if (!signal.aborted) return 'error';
  if (signal.reason instanceof JobTimeoutError) return 'timeout';
  if (signal.reason instanceof JobCancelledError) return 'cancelled';
  return 'aborted';
}

/** The malware scan step when MALWARE_SCAN=clamd (src/processing/malware-scan.ts), else none. */
function malwareScan({ config, store, pool, logger, metrics }: WorkerSetup): MalwareScanStep | undefined {
  const scan = config.malwareScan;
  if (scan.kind === 'off') return undefined;
  const client = new ClamdClient(scan);
  logger.info({ clamd: client.describe(), maxBytes: scan.maxBytes }, 'malware scanning is ON (clamd)');
  // Not a start-up condition (jobs wait for clamd, fail closed), but worth saying at once.
  void client.ping().then((up) => {
    if (!up) logger.warn({ clamd: client.describe() }, 'clamd does not answer; jobs wait until it does');
  });
  return new MalwareScanStep({
    scanner: client,
    store,
    records: pgQuarantineRecords(pool),
    maxBytes: scan.maxBytes,
    observe: (outcome) => (metrics ?? NO_METRICS).malwareScan(outcome),
  });
}
