/**
 * Devices' `last_seen_at`, written behind the requests: every device seen in a flush interval is
 * written by one UPDATE, at most once per {@link LAST_SEEN_RESOLUTION_MS} per device and process.
 * One statement per device used to run on every device's first request: 200 cameras reconnecting
 * at once were 200 UPDATEs (and 200 commits) competing with their own upload sessions for the pool.
 */
import type { Logger } from 'pino';
import type { Queryable } from '../db/pool.ts';

/** A device's `last_seen_at` is written at most this often (once per device per minute). */
export const LAST_SEEN_RESOLUTION_MS = 60_000;
/** How long a seen device waits for its write: what `last_seen_at` may lag behind the request. */
export const LAST_SEEN_FLUSH_MS = 1_000;
/** Bound on the devices remembered as written (then the memory starts over: a few early writes). */
const REMEMBERED_MAX = 10_000;

export class LastSeenWriter {
  /** When this process last wrote each device's `last_seen_at`. */
  private readonly written = new Map<string, number>();
  private pending = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly db: Queryable,
    private readonly logger: Logger,
    private readonly flushMs = LAST_SEEN_FLUSH_MS,
  ) {}

  /** Notes that a device made a request; never holds the request up. */
  seen(deviceId: string): void {
    if (this.closed) return;
    const now = Date.now();
    const last = this.written.get(deviceId);
    if (last !== undefined && now - last < LAST_SEEN_RESOLUTION_MS) return;
    if (this.written.size >= REMEMBERED_MAX) this.written.clear();
    this.written.set(deviceId, now);
    this.pending.add(deviceId);
    this.timer ??= setTimeout(() => void this.flush(), this.flushMs).unref();
  }

  /**
   * Writes the devices seen since the last flush, in one statement. A failed write is only a late
   * last-seen time: those devices are written again on their next request.
   */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const ids = [...this.pending];
    this.pending = new Set();
    if (ids.length === 0) return this.flushing;
    this.flushing = this.flushing.then(async () => {
      try {
        await this.db.query(
          `UPDATE devices SET last_seen_at = now()
            WHERE id = ANY($1::uuid[]) AND (last_seen_at IS NULL OR last_seen_at < now() - interval '1 second')`,
          [ids],
        );
      } catch (err) {
        for (const id of ids) this.written.delete(id);
        this.logger.warn({ err, devices: ids.length }, 'could not record when devices were last seen');
      }
    });
    return this.flushing;
  }

  /** Writes what is pending; nothing is noted afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }
}
