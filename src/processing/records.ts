/** The jobs' `ProcessingRecords` over Postgres (repo.ts, video-repo.ts). */
import { withTransaction, type Pool } from '../db/pool.ts';
import { hlsObjectKeys } from '../media/repo.ts';
import { markQuarantined } from '../media/transitions.ts';
import type { QuarantineRecords } from './malware-scan.ts';
import type { ProcessingRecords } from './ports.ts';
import * as repo from './repo.ts';
import { markVideoReady } from './video-repo.ts';

export function pgRecords(pool: Pool): ProcessingRecords {
  return {
    setProgress: (id, percent) => repo.setProgress(pool, id, percent),
    recordVerifiedSha256: (id, sha256) => repo.recordVerifiedSha256(pool, id, sha256),
    markFailed: (id, error) => repo.markProcessingFailed(pool, id, error),
    markImageReady: (id, result) => repo.markReadyReplacing(pool, id, result),
    markVideoReady: (id, result) => withTransaction(pool, (tx) => markVideoReady(tx, id, result)),
    referencedKeys: async (id) => [...(await repo.variantKeys(pool, id)), ...(await hlsObjectKeys(pool, id))],
  };
}

/** The malware scan's `QuarantineRecords` over Postgres. */
export function pgQuarantineRecords(pool: Pool): QuarantineRecords {
  return {
    markFailed: (id, error) => repo.markProcessingFailed(pool, id, error),
    markQuarantined: (id, move, error) => markQuarantined(pool, id, move, error),
  };
}
