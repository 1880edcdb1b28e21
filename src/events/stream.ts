/**
 * Live event streams. One LISTEN connection per API process wakes every open stream of that
 * process when any event commits (`mediary_events`, payload: the event id); each stream then reads
 * what is new in its own scope from the events table. Nothing is kept in process memory, so a
 * stream on one instance sees events written through any other, and a resumed stream
 * (Last-Event-ID) replays from the table. The heartbeat also reads, so an event whose NOTIFY was
 * lost (LISTEN connection down) is still delivered, only later.
 */
import type { Logger } from 'pino';
import { NotificationListener } from '../db/listener.ts';
import type { Pool, Queryable } from '../db/pool.ts';
import { EVENTS_CHANNEL, readAfter, type Cursor, type EventScope, type StoredEvent } from './repo.ts';

/** Wakes the open streams of this process when events commit anywhere in the cluster. */
export class EventHub {
  private readonly wakers = new Set<() => void>();
  private readonly listener: NotificationListener;

  constructor(pool: Pool, logger: Logger) {
    this.listener = NotificationListener.start(
      pool,
      // Every (re)connect wakes all streams: notifications may have been missed meanwhile.
      { channels: { [EVENTS_CHANNEL]: () => this.wakeAll() }, onConnect: () => this.wakeAll() },
      logger.child({ component: 'events' }),
    );
  }

  subscribe(wake: () => void): () => void {
    this.wakers.add(wake);
    return () => this.wakers.delete(wake);
  }

  /** Open streams in this process. */
  get size(): number {
    return this.wakers.size;
  }

  private wakeAll(): void {
    for (const wake of this.wakers) wake();
  }

  async stop(): Promise<void> {
    await this.listener.stop();
  }
}

/** One event in the `text/event-stream` format: `id:` is the event id (for Last-Event-ID). */
export function formatEvent(e: StoredEvent): string {
  const data = JSON.stringify({ id: e.id, type: e.type, createdAt: e.createdAt, data: e.payload });
  return `id: ${e.id}\nevent: ${e.type}\ndata: ${data}\n\n`;
}

export interface StreamOptions {
  db: Queryable;
  hub: EventHub;
  scope: EventScope;
  cursor: Cursor;
  heartbeatMs: number;
  /** Asked at every heartbeat: the reader may still see the scope (a revoked device may not). */
  stillAllowed: () => Promise<boolean>;
  /** Writes a chunk; resolves when the connection can take more (back-pressure). */
  write: (chunk: string) => Promise<void>;
  signal: AbortSignal;
  logger: Logger;
}

/** Held-back events (an older transaction still running) are read again after this long. */
const HELD_RETRY_MS = 200;

/** Sends the scope's events from `cursor` on until `signal` aborts or access ends. */
export async function runStream(o: StreamOptions): Promise<void> {
  let cursor = o.cursor;
  let dirty = true;
  let wake: (() => void) | undefined;
  const unsubscribe = o.hub.subscribe(() => {
    dirty = true;
    wake?.();
  });
  const onAbort = () => wake?.();
  o.signal.addEventListener('abort', onAbort);
  try {
    let nextBeat = Date.now() + o.heartbeatMs;
    while (!o.signal.aborted) {
      let retrySoon = false;
      if (dirty) {
        dirty = false;
        const batch = await readAfter(o.db, o.scope, cursor);
        for (const e of batch.events) {
          if (o.signal.aborted) return;
          await o.write(formatEvent(e));
        }
        cursor = batch.cursor;
        retrySoon = batch.more;
      }
      if (Date.now() >= nextBeat) {
        nextBeat = Date.now() + o.heartbeatMs;
        if (!(await o.stillAllowed())) return;
        await o.write(': heartbeat\n\n');
        dirty = true; // also a poll: catches events whose NOTIFY this process missed
        continue;
      }
      if (dirty || o.signal.aborted) continue;
      const waitMs = retrySoon ? HELD_RETRY_MS : Math.max(0, nextBeat - Date.now());
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          if (retrySoon) dirty = true;
          resolve();
        }, waitMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  } catch (err) {
    if (!o.signal.aborted) o.logger.warn({ err }, 'event stream ended by an error');
  } finally {
    unsubscribe();
    o.signal.removeEventListener('abort', onAbort);
  }
}
