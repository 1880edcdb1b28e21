/**
 * The audit log's writer for reads (downloads, signed URLs, playback): asynchronous and bounded.
 *
 * A read changes nothing, so there is no transaction to join, and its answer must not wait for,
 * or fail because of, the audit log: `record` only appends to an in-memory buffer and returns.
 * A background flush writes the buffer in batches (one INSERT per ≤ 500 rows, one flush at a
 * time). When the buffer is full (the database is slow or down for long), new rows are dropped,
 * counted and logged (at most one warning per 10 s); a failed batch is counted and logged the
 * same way. So under overload the audit log of reads is incomplete, never the reads themselves.
 * State changes are not written here: the database's triggers record them in their own
 * transaction (migration 0027).
 */
import type { Logger } from 'pino';
import type { Queryable } from '../db/pool.ts';
import { actorOf, boundUserAgent, currentOrigin, type AuditActor } from './context.ts';

/** What a read is recorded as. */
export type ReadAction =
  'media.downloaded' | 'media.variant_downloaded' | 'media.playback_issued' | 'media.urls_issued';

export interface ReadRecord {
  action: ReadAction;
  actor: AuditActor;
  mediaId: string;
  details?: Record<string, unknown>;
}

interface Row {
  at: string;
  action: string;
  actor_kind: string;
  actor_id: string;
  media_id: string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
}

export interface AuditWriterStats {
  written: number;
  /** Dropped because the buffer was full. */
  dropped: number;
  /** Lost because their INSERT failed. */
  failed: number;
  buffered: number;
}

const WARN_EVERY_MS = 10_000;

export class AuditWriter {
  private buffer: Row[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;
  private lastWarning = 0;
  private readonly counts = { written: 0, dropped: 0, failed: 0 };

  constructor(
    private readonly db: Queryable,
    private readonly logger: Logger,
    private readonly limits: { maxBuffered: number; batchSize: number } = {
      maxBuffered: 10_000,
      batchSize: 500,
    },
  ) {}

  /** Queues one row (with the current request's origin); never throws, never waits. */
  record(entry: ReadRecord): void {
    if (this.closed) return;
    if (this.buffer.length >= this.limits.maxBuffered) {
      this.counts.dropped++;
      this.warn('audit log buffer full: dropping read records');
      return;
    }
    const origin = currentOrigin();
    const { kind, id } = actorOf(entry.actor);
    this.buffer.push({
      at: new Date().toISOString(),
      action: entry.action,
      actor_kind: kind,
      actor_id: id,
      media_id: entry.mediaId,
      ip: origin?.ip ?? null,
      user_agent: boundUserAgent(origin?.userAgent) ?? null,
      request_id: origin?.requestId ?? null,
      details: entry.details ?? {},
    });
    this.kick();
  }

  stats(): AuditWriterStats {
    return { ...this.counts, buffered: this.buffer.length };
  }

  /** Writes what is buffered, then accepts no more (shutdown). */
  async close(): Promise<void> {
    this.closed = true;
    await this.flushing;
    if (this.buffer.length > 0) await this.flush();
  }

  private kick(): void {
    this.flushing ??= this.flush().finally(() => {
      this.flushing = undefined;
      if (this.buffer.length > 0 && !this.closed) this.kick();
    });
  }

  private async flush(): Promise<void> {
    // Let the request that recorded the row finish first.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.buffer.length > 0) {
      const batch = this.buffer.splice(0, this.limits.batchSize);
      try {
        await this.db.query(
          `INSERT INTO audit_log (at, action, actor_kind, actor_id, resource_type, resource_id, owners,
                                  ip, user_agent, request_id, details)
           SELECT r.at, r.action, r.actor_kind, r.actor_id, 'media', r.media_id,
                  array_remove(ARRAY[audit_media_owner(r.media_id::uuid)], NULL),
                  r.ip, r.user_agent, r.request_id, r.details
             FROM jsonb_to_recordset($1::jsonb) AS r(at timestamptz, action text, actor_kind text,
                  actor_id text, media_id text, ip text, user_agent text, request_id text, details jsonb)`,
          [JSON.stringify(batch)],
        );
        this.counts.written += batch.length;
      } catch (err) {
        this.counts.failed += batch.length;
        this.warn('audit log write failed: read records lost', err);
      }
    }
  }

  private warn(message: string, err?: unknown): void {
    const now = Date.now();
    if (now - this.lastWarning < WARN_EVERY_MS) return;
    this.lastWarning = now;
    this.logger.warn({ err, audit: this.stats() }, message);
  }
}
