import { bool, int, type Env } from './env.ts';

/** What Mediary tells others: the events outbox with its live streams, and outgoing webhooks. */
export interface EventsSettings {
  events: EventsConfig;
  webhooks: WebhooksConfig;
}

/** The events outbox and its live streams (SSE). */
export interface EventsConfig {
  /** A comment line every this many seconds keeps proxies from closing an idle stream. */
  heartbeatSeconds: number;
  /** Events older than this are deleted (Last-Event-ID further back replays what is left). */
  retentionDays: number;
  /** Lifetime of a stream token (`POST /events/token`, for EventSource, which sends no headers). */
  tokenTtlSeconds: number;
}

/** Outgoing webhooks: delivery limits and the SSRF guard. */
export interface WebhooksConfig {
  /** Deliver to private, loopback, link-local and metadata addresses too (off: refused). */
  allowPrivateTargets: boolean;
  /** Connect + answer time of one delivery attempt. */
  timeoutMs: number;
  /** Attempts per delivery (the first and its retries) before it is given up. */
  maxAttempts: number;
  /** First retry delay; doubles on each further retry. */
  retryDelaySeconds: number;
  /** A subscription is disabled after this many deliveries in a row were given up (0 = never). */
  disableAfterFailures: number;
}

/** EVENTS_*, WEBHOOK_*. */
export function eventsSettings(env: Env): EventsSettings {
  return {
    events: {
      heartbeatSeconds: int(env, 'EVENTS_HEARTBEAT_SECONDS', 15, 1, 300),
      retentionDays: int(env, 'EVENTS_RETENTION_DAYS', 7, 1, 3650),
      tokenTtlSeconds: int(env, 'EVENTS_TOKEN_TTL_SECONDS', 300, 10, 3600),
    },
    webhooks: {
      allowPrivateTargets: bool(env, 'WEBHOOK_ALLOW_PRIVATE_TARGETS', false),
      timeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 120_000),
      maxAttempts: int(env, 'WEBHOOK_MAX_ATTEMPTS', 8, 1, 50),
      retryDelaySeconds: int(env, 'WEBHOOK_RETRY_DELAY_SECONDS', 10, 0, 3600),
      disableAfterFailures: int(env, 'WEBHOOK_DISABLE_AFTER_FAILURES', 20, 0, 100_000),
    },
  };
}
