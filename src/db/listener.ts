/**
 * One LISTEN connection for the API process: delivers NOTIFY payloads to handlers and reconnects
 * after the database drops it. While it is down, notifications are lost, so consumers must not
 * rely on state they keep fresh through it (`connected` says whether they can); after every
 * (re)connect `onConnect` runs, so they can throw away whatever they kept meanwhile.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { toError } from '../errors.ts';
import type { Pool, PoolClient } from './pool.ts';

export interface ListenerOptions {
  /** Channel → handler of the payload. Channel names are our own constants (not user input). */
  channels: Record<string, (payload: string) => void>;
  /** Runs after each successful (re)connect. */
  onConnect?: () => void;
  /** Delay between reconnect attempts. */
  retryMs?: number;
}

export class NotificationListener {
  private current: { client: PoolClient; release: (err?: Error) => void } | undefined;
  private stopping = false;
  private readonly halt = new AbortController();
  private loop: Promise<void> | undefined;

  private constructor(
    private readonly pool: Pool,
    private readonly opts: ListenerOptions,
    private readonly log: Logger,
  ) {}

  /** Connects (or keeps trying in the background if the database is not reachable yet). */
  static start(pool: Pool, opts: ListenerOptions, logger: Logger): NotificationListener {
    const l = new NotificationListener(pool, opts, logger.child({ component: 'listener' }));
    l.loop = l.keepConnected();
    return l;
  }

  /** True while notifications are being received. */
  get connected(): boolean {
    return this.current !== undefined;
  }

  private async keepConnected(): Promise<void> {
    let failures = 0;
    while (!this.stopping) {
      if (!this.current) {
        try {
          await this.connect();
          if (failures > 0) this.log.info('LISTEN connection restored');
          failures = 0;
        } catch (err) {
          if (failures++ === 0) this.log.warn({ err }, 'LISTEN connection unavailable; retrying');
        }
      }
      await sleep(this.opts.retryMs ?? 1000, undefined, { signal: this.halt.signal }).catch(() => undefined);
    }
  }

  private async connect(): Promise<void> {
    const client = await this.pool.connect();
    let released = false;
    // The 'error' listener stays for the client's life: a late error on a released client is
    // a no-op here instead of an unhandled event.
    const release = (err?: Error) => {
      if (this.current?.client === client) this.current = undefined;
      if (released) return;
      released = true;
      client.removeAllListeners('notification');
      client.release(err ?? true);
    };
    client.on('error', (err) => {
      if (!released) this.log.warn({ err }, 'LISTEN connection lost');
      release(err);
    });
    client.on('end', () => {
      if (!released) this.log.warn('LISTEN connection ended');
      release(new Error('The LISTEN connection ended.'));
    });
    client.on('notification', (msg) => {
      const handler = this.opts.channels[msg.channel];
      if (handler) handler(msg.payload ?? '');
    });
    try {
      for (const channel of Object.keys(this.opts.channels)) await client.query(`LISTEN ${channel}`);
    } catch (err) {
      release(toError(err));
      throw err;
    }
    if (this.stopping || released) {
      release();
      return;
    }
    this.current = { client, release };
    this.opts.onConnect?.();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.halt.abort();
    await this.loop;
    this.current?.release();
  }
}
