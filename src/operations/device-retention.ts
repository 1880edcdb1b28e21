import type { Logger } from 'pino';
import { withTransaction, type Pool } from '../db/pool.ts';
import {
  devicesWithRetention,
  expiredCaptures,
  lockExpiredCapture,
  retentionCutoff,
} from '../devices/retention.ts';
import { markDeletedWithin, type MediaService } from '../media/service.ts';
import { startPeriodic } from './periodic.ts';

const BATCH = 100;

/**
 * Per-device retention (src/devices/retention.ts says what counts): every device with
 * `retention_days` loses its expired captures through the deletion use case — each marked DELETED
 * in its own transaction (outbox row included), then its objects removed and purged through the
 * deletion outbox. Returns how many media were deleted, per device.
 */
export async function applyDeviceRetention(
  pool: Pool,
  media: MediaService,
  logger: Logger,
  now = new Date(),
): Promise<Map<string, number>> {
  const deleted = new Map<string, number>();
  for (const device of await devicesWithRetention(pool)) {
    const cutoff = retentionCutoff(device.days, now);
    let count = 0;
    for (;;) {
      const ids = await expiredCaptures(pool, device.id, cutoff, BATCH);
      let progressed = 0;
      for (const id of ids) {
        const gone = await withTransaction(pool, async (tx) => {
          if (!(await lockExpiredCapture(tx, id, device.id, cutoff))) return false;
          return markDeletedWithin(tx, id);
        });
        if (!gone) continue; // pinned or deleted meanwhile
        await media.removeObjects({ id });
        count++;
        progressed++;
      }
      if (ids.length < BATCH || progressed === 0) break;
    }
    if (count > 0) {
      deleted.set(device.id, count);
      logger.info({ deviceId: device.id, deleted: count, retentionDays: device.days }, 'device retention');
    }
  }
  return deleted;
}

/** Runs {@link applyDeviceRetention} every `intervalSeconds` (0 = never), once per cluster. */
export function startDeviceRetention(
  pool: Pool,
  media: MediaService,
  intervalSeconds: number,
  logger: Logger,
): () => Promise<void> {
  return startPeriodic(
    'device retention',
    intervalSeconds,
    async () => {
      await applyDeviceRetention(pool, media, logger);
    },
    logger,
    pool,
  );
}
