/** Wires the image job and the dead-letter handling into a worker (used by serve and `mediary worker`). */
import type { Logger } from 'pino';
import type { ProcessingConfig } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import type { ObjectStore } from '../storage/types.ts';
import { HeifConverter } from './heif.ts';
import { ImageJob, publicMessage } from './image-job.ts';
import type { JobQueue } from './queue.ts';
import * as repo from './repo.ts';
import { Worker } from './worker.ts';

export { Worker };

export interface WorkerSetup {
  pool: Pool;
  queue: JobQueue;
  store: ObjectStore;
  config: ProcessingConfig;
  logger: Logger;
}

export async function startWorker({ pool, queue, store, config, logger }: WorkerSetup): Promise<Worker> {
  const heif = new HeifConverter(config.heifConvert, config.jobTimeoutSeconds * 1000);
  if (!(await heif.isAvailable())) {
    logger.warn(
      { command: config.heifConvert },
      'heif-convert not found: HEIC/HEIF uploads will fail (install libheif-examples)',
    );
  }
  const job = new ImageJob({ pool, store, heif, config });
  return Worker.start({
    pool,
    queue,
    logger,
    config,
    handler: job.handle,
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
      if (failed) logger.error({ mediaId: payload.mediaId }, 'processing gave up; media marked FAILED');
    },
  });
}
