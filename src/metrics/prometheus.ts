/**
 * The one module of metric definitions: every Mediary metric, its name, help, labels and buckets,
 * in one prom-client registry per process (not the library's global one: several servers in one
 * test process keep apart). Implements the {@link Metrics} port the rest of the code calls.
 *
 * Conventions (https://prometheus.io/docs/practices/naming/): `mediary_` prefix, base units
 * (`_seconds`, `_bytes`), counters end in `_total`; labels take values from fixed sets only (a
 * route pattern, a backend, a failure code, an operation) — never a media, user or device id.
 * Gauges of shared state (queue depth, the database pool) are sampled when scraped.
 */
import client from 'prom-client';
import type { Logger } from 'pino';
import type {
  MalwareScanOutcome,
  MediaKind,
  Metrics,
  ProcessingOutcome,
  StoreBackend,
  StoreOperation,
  StoreOutcome,
  VerificationFailure,
  WebhookAttemptOutcome,
} from './port.ts';

/** The pool figures sampled on scrape (pg.Pool has them). */
export interface PoolFigures {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
  options: { max?: number | undefined };
}

export interface QueueFigures {
  queue: string;
  ready: number;
  delayed: number;
  active: number;
  oldestReadySeconds: number;
}

export interface PrometheusMetricsOptions {
  logger: Logger;
  /** The process' database pool (connections in use, idle, clients waiting). */
  pool?: PoolFigures | undefined;
  /** Reads the job queues' depth and age (pg-boss tables), once per scrape. */
  sampleQueues?: (() => Promise<QueueFigures[]>) | undefined;
  /** Node's process metrics (CPU, memory, event loop lag, GC); on by default. */
  defaultMetrics?: boolean;
}

const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Seconds: fast JSON calls to long uploads. */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Seconds: a small image to an hour of video. */
const PROCESSING_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600];
/** Seconds: a stat to a multi-GB part. */
const STORE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const WEBHOOK_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class PrometheusMetrics implements Metrics {
  readonly registry = new client.Registry();

  private readonly httpDuration;
  private readonly sessions;
  private readonly completed;
  private readonly failed;
  private readonly receivedBytes;
  private readonly verification;
  private readonly processing;
  private readonly processingFailures;
  private readonly deadLettered;
  private readonly storeDuration;
  private readonly storeErrors;
  private readonly webhookAttempts;
  private readonly webhookDuration;
  private readonly malwareScans;

  constructor(opts: PrometheusMetricsOptions) {
    const registers = [this.registry];
    if (opts.defaultMetrics ?? true) client.collectDefaultMetrics({ register: this.registry });

    this.httpDuration = new client.Histogram({
      name: 'mediary_http_request_duration_seconds',
      help: 'HTTP requests by method, route pattern and status class (2xx, 4xx …), until the answer was sent.',
      labelNames: ['method', 'route', 'status_class'] as const,
      buckets: HTTP_BUCKETS,
      registers,
    });
    this.sessions = new client.Counter({
      name: 'mediary_upload_sessions_created_total',
      help: 'Upload sessions opened (idempotent replays not counted).',
      labelNames: ['backend', 'media_type'] as const,
      registers,
    });
    this.completed = new client.Counter({
      name: 'mediary_uploads_completed_total',
      help: 'Uploads whose bytes passed verification (PENDING → UPLOADED).',
      labelNames: ['backend'] as const,
      registers,
    });
    this.failed = new client.Counter({
      name: 'mediary_uploads_failed_total',
      help: 'Uploads that ended without verified bytes (PENDING → FAILED), by failure code.',
      labelNames: ['backend', 'reason'] as const,
      registers,
    });
    this.receivedBytes = new client.Counter({
      name: 'mediary_upload_received_bytes_total',
      help: 'Bytes of uploads that passed verification (through the API or straight to the store), counted at completion.',
      labelNames: ['backend'] as const,
      registers,
    });
    this.verification = new client.Counter({
      name: 'mediary_upload_verification_failures_total',
      help: 'Completions refused because the stored bytes did not check out, by kind.',
      labelNames: ['backend', 'kind'] as const,
      registers,
    });
    this.processing = new client.Histogram({
      name: 'mediary_processing_duration_seconds',
      help: 'Processing attempts by media kind and outcome (completed, failed, skipped, error, timeout, cancelled, aborted).',
      labelNames: ['kind', 'outcome'] as const,
      buckets: PROCESSING_BUCKETS,
      registers,
    });
    this.processingFailures = new client.Counter({
      name: 'mediary_processing_failures_total',
      help: 'Processing attempts that marked the media FAILED, by media kind and failure code.',
      labelNames: ['kind', 'code'] as const,
      registers,
    });
    this.deadLettered = new client.Counter({
      name: 'mediary_jobs_dead_lettered_total',
      help: 'Jobs that used up their attempts (read from the dead-letter queue).',
      labelNames: ['queue'] as const,
      registers,
    });
    this.storeDuration = new client.Histogram({
      name: 'mediary_store_operation_duration_seconds',
      help: 'Object store calls by backend and operation (streams: until the stream was opened).',
      labelNames: ['backend', 'operation'] as const,
      buckets: STORE_BUCKETS,
      registers,
    });
    this.storeErrors = new client.Counter({
      name: 'mediary_store_operation_errors_total',
      help: 'Object store calls that failed for the store’s reasons (not a client’s bad bytes or a create-only conflict).',
      labelNames: ['backend', 'operation'] as const,
      registers,
    });
    this.webhookAttempts = new client.Counter({
      name: 'mediary_webhook_delivery_attempts_total',
      help: 'Webhook delivery attempts by outcome (succeeded, retrying, given_up).',
      labelNames: ['outcome'] as const,
      registers,
    });
    this.webhookDuration = new client.Histogram({
      name: 'mediary_webhook_delivery_duration_seconds',
      help: 'Webhook delivery attempts, connect to answer.',
      buckets: WEBHOOK_BUCKETS,
      registers,
    });

    this.malwareScans = new client.Counter({
      name: 'mediary_malware_scans_total',
      help: 'Malware scans of originals by outcome (clean, infected, too_large, unavailable).',
      labelNames: ['outcome'] as const,
      registers,
    });

    const pool = opts.pool;
    if (pool) {
      new client.Gauge({
        name: 'mediary_db_pool_connections',
        help: 'Database pool connections by state (in_use, idle).',
        labelNames: ['state'] as const,
        registers,
        collect() {
          this.set({ state: 'in_use' }, pool.totalCount - pool.idleCount);
          this.set({ state: 'idle' }, pool.idleCount);
        },
      });
      new client.Gauge({
        name: 'mediary_db_pool_max_connections',
        help: 'The pool’s connection limit.',
        registers,
        collect() {
          this.set(pool.options.max ?? 10);
        },
      });
      new client.Gauge({
        name: 'mediary_db_pool_waiting_clients',
        help: 'Queries waiting for a free pool connection.',
        registers,
        collect() {
          this.set(pool.waitingCount);
        },
      });
    }

    const sample = opts.sampleQueues;
    if (sample) {
      const log = opts.logger;
      // One query per scrape feeds both gauges (the first collect() reads, the second reuses it).
      let pending: Promise<QueueFigures[] | undefined> | undefined;
      const read = () =>
        (pending ??= sample()
          .catch((err: unknown) => {
            log.warn({ err }, 'could not sample the job queues for metrics');
            return undefined;
          })
          .finally(() => setImmediate(() => (pending = undefined))));
      new client.Gauge({
        name: 'mediary_queue_jobs',
        help: 'Unfinished jobs per queue and state: ready (may run now), delayed (waiting out a retry delay), active.',
        labelNames: ['queue', 'state'] as const,
        registers,
        async collect() {
          const figures = await read();
          if (!figures) return;
          for (const q of figures) {
            this.set({ queue: q.queue, state: 'ready' }, q.ready);
            this.set({ queue: q.queue, state: 'delayed' }, q.delayed);
            this.set({ queue: q.queue, state: 'active' }, q.active);
          }
        },
      });
      new client.Gauge({
        name: 'mediary_queue_oldest_job_age_seconds',
        help: 'Seconds the longest-waiting ready job of each queue has been runnable (0: none waiting).',
        labelNames: ['queue'] as const,
        registers,
        async collect() {
          const figures = await read();
          if (!figures) return;
          for (const q of figures) this.set({ queue: q.queue }, q.oldestReadySeconds);
        },
      });
    }
  }

  /** The exposition (Prometheus text format) of every metric. */
  async expose(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  httpRequest(method: string, route: string, status: number, seconds: number): void {
    this.httpDuration.observe(
      {
        method: HTTP_METHODS.has(method) ? method : 'other',
        route,
        status_class: `${Math.trunc(status / 100)}xx`,
      },
      seconds,
    );
  }

  sessionCreated(backend: StoreBackend, kind: MediaKind): void {
    this.sessions.inc({ backend, media_type: kind });
  }

  uploadCompleted(backend: StoreBackend, bytes: number): void {
    this.completed.inc({ backend });
    this.receivedBytes.inc({ backend }, bytes);
  }

  uploadFailed(backend: StoreBackend, reason: string): void {
    this.failed.inc({ backend, reason });
  }

  verificationFailed(backend: StoreBackend, kind: VerificationFailure): void {
    this.verification.inc({ backend, kind });
  }

  processingFinished(
    kind: MediaKind | undefined,
    outcome: ProcessingOutcome,
    seconds: number,
    failure?: string,
  ): void {
    const k = kind ?? 'unknown';
    this.processing.observe({ kind: k, outcome }, seconds);
    if (outcome === 'failed') this.processingFailures.inc({ kind: k, code: failure ?? 'unknown' });
  }

  jobDeadLettered(queue: string, count = 1): void {
    this.deadLettered.inc({ queue }, count);
  }

  storeOperation(
    backend: StoreBackend,
    operation: StoreOperation,
    outcome: StoreOutcome,
    seconds: number,
  ): void {
    this.storeDuration.observe({ backend, operation }, seconds);
    if (outcome === 'error') this.storeErrors.inc({ backend, operation });
  }

  webhookAttempt(outcome: WebhookAttemptOutcome, seconds: number): void {
    this.webhookAttempts.inc({ outcome });
    this.webhookDuration.observe(seconds);
  }

  malwareScan(outcome: MalwareScanOutcome): void {
    this.malwareScans.inc({ outcome });
  }
}
