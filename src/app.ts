/**
 * Composition root: builds every service from the config, in dependency order, and tears them
 * down in reverse. Nothing else constructs infrastructure.
 */
import { mkdir } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { LastSeenWriter } from './auth/last-seen.ts';
import { Authenticator, DEVICE_CHANGED_CHANNEL } from './auth/principals.ts';
import { DeviceService } from './devices/service.ts';
import { StartupError, type Config } from './config.ts';
import { NotificationListener } from './db/listener.ts';
import { openDatabase, type Database } from './db/open.ts';
import { createPool, type Pool } from './db/pool.ts';
import { buildHttpServer } from './http/server.ts';
import { httpRateWindows } from './rate-limits.ts';
import type { Logger } from './log.ts';
import { MultipartUploads } from './media/multipart.ts';
import { MediaService } from './media/service.ts';
import { startTusSweep, TusUploads } from './media/tus.ts';
import { startDiagnostics } from './operations/diagnostics.ts';
import { startSweeper } from './operations/sweeper.ts';
import { HttpCdnPurge } from './operations/cdn-purge.ts';
import { startDeletionDrain } from './operations/deletion-drain.ts';
import { startDeviceRetention } from './operations/device-retention.ts';
import { startAuditRetention } from './operations/audit-retention.ts';
import { AuditQueries } from './audit/service.ts';
import { AuditWriter } from './audit/writer.ts';
import { PgBossQueue, queueStats } from './infra/queue/pg-boss.ts';
import { processMetrics, startMetricsListener, type ProcessMetrics } from './metrics/endpoint.ts';
import { instrumentStore } from './metrics/store.ts';
import { CircleService } from './circles/service.ts';
import { startGrpcServer } from './grpc/server.ts';
import { StreamAccess } from './events/access.ts';
import { startEventRetention } from './events/retention.ts';
import { EventHub } from './events/stream.ts';
import { WebhookService } from './webhooks/service.ts';
import { startPostMediaLifecycle } from './operations/post-media.ts';
import { PostService } from './posts/service.ts';
import { PROFILE_CHANNEL, ProfileService } from './profiles/service.ts';
import { HlsPlayback } from './processing/playback.ts';
import { Admission } from './processing/admission.ts';
import { ProcessingService } from './processing/service.ts';
import { startWorker, type Worker } from './processing/runtime.ts';
import { createStore } from './storage/factory.ts';
import { LocalObjectStore } from './storage/local.ts';
import { signingSecret, UrlSigner } from './storage/signing.ts';
import { PublicUrls } from './http/urls.ts';
import type { ObjectStore } from './storage/types.ts';

export interface Server {
  app: FastifyInstance;
  database: Database;
  queue: PgBossQueue;
  /** The in-process worker (WORKER_ENABLED), if any. */
  worker: Worker | undefined;
  /** The media use cases (for admin commands and tests beside the HTTP API). */
  media: MediaService;
  /** The port of the internal gRPC API (GRPC_PORT), if it runs. */
  grpcPort: number | undefined;
  /** http://host:port of the metrics listener (METRICS_PORT), if it runs. */
  metricsUrl: string | undefined;
  url: string;
  close(): Promise<void>;
}

export async function startServer(config: Config, logger: Logger): Promise<Server> {
  // What has been started, stopped in reverse order by close() or by a start that fails part-way
  // (a port in use must not leave the embedded Postgres or the worker running).
  const started: { name: string; stop: () => Promise<void> }[] = [];
  const stopStarted = async () => {
    for (const { name, stop } of started.splice(0).reverse()) {
      await stop().catch((err: unknown) => logger.error({ err }, `stopping ${name} failed`));
    }
  };
  try {
    return await startServerParts(config, logger, started, stopStarted);
  } catch (err) {
    await stopStarted();
    throw err;
  }
}

async function startServerParts(
  config: Config,
  logger: Logger,
  started: { name: string; stop: () => Promise<void> }[],
  stopStarted: () => Promise<void>,
): Promise<Server> {
  const database = await openDatabase(config, logger, 'own');
  started.push({ name: 'database', stop: () => database.close() });
  const { pool } = database;
  const queue = await PgBossQueue.start(pool, logger, queueOptions(config), {
    prepared: config.databasePreparedStatements,
  });
  started.push({ name: 'queue', stop: () => queue.stop() });
  const metrics = processMetrics(config.metrics, {
    logger,
    pool,
    sampleQueues: () => queueStats(pool),
  });
  const signer = new UrlSigner(await signingSecret(config));
  // Every URL handed out (signed or not) is built by the HTTP layer; the domain gets it as ports.
  const urls = new PublicUrls(signer, config.publicUrl);
  const store = metricStore(createStore(config, config.storage.backend, urls), metrics);
  if (store instanceof LocalObjectStore) {
    await mkdir(config.storage.dir, { recursive: true });
    // What a killed process of this host was writing goes at once; anything else after 24 h.
    const removed = (await store.removeOrphanedTemp()) + (await store.sweepTemp(24 * 3600 * 1000));
    if (removed > 0) logger.info({ removed }, 'removed stale temporary upload files');
  }
  const multipart = new MultipartUploads(pool, store, urls, config, logger, metrics.recorder);
  const stopSweeper = startSweeper(pool, store, config.sweeper, logger, metrics.recorder);
  started.push({ name: 'sweeper', stop: stopSweeper });
  started.push({
    name: 'diagnostics',
    stop: startDiagnostics(pool, config.diagnostics.intervalSeconds, logger),
  });

  // Device changes (revoked, new owner, deleted) are announced by the database; the key cache is
  // only used while that connection is up, and starts empty after every reconnect.
  const lastSeen = new LastSeenWriter(pool, logger);
  started.push({ name: 'device last-seen writes', stop: () => lastSeen.close() });
  const authenticator = new Authenticator(pool, config.auth, lastSeen, () => deviceChanges.connected);
  const deviceChanges = NotificationListener.start(
    pool,
    {
      channels: { [DEVICE_CHANGED_CHANNEL]: (payload) => authenticator.deviceChanged(payload) },
      onConnect: () => authenticator.forgetAll(),
    },
    logger,
  );
  started.push({ name: 'device listener', stop: () => deviceChanges.stop() });
  const circles = new CircleService(pool, logger);
  const devices = new DeviceService(pool, config.devices, logger);
  const media = new MediaService(
    pool,
    store,
    queue,
    urls,
    config,
    logger,
    multipart,
    circles,
    metrics.recorder,
  );
  startDeletion(pool, media, config, logger, started);
  const tus = new TusUploads(pool, store, media, multipart, config, logger);
  started.push({ name: 'tus sweep', stop: startTusSweep(tus, config.sweeper.intervalSeconds, logger) });
  const processing = new ProcessingService(pool, media, store, queue, config, logger);
  const playback = new HlsPlayback(pool, media, store, urls, config);
  const posts = new PostService(pool, media, config.posts, logger, circles);
  const stopPostLifecycle =
    config.posts.mediaGraceSeconds > 0
      ? startPostMediaLifecycle(
          pool,
          media,
          { intervalSeconds: config.sweeper.intervalSeconds, graceSeconds: config.posts.mediaGraceSeconds },
          logger,
        )
      : () => Promise.resolve();
  started.push({ name: 'post media lifecycle', stop: stopPostLifecycle });
  const profiles = startProfiles(pool, media, circles, logger, started);
  const events = startEvents(pool, signer, config, logger, started);
  const webhooks = new WebhookService(
    pool,
    await queue.webhookQueue(),
    config.webhooks,
    logger,
    metrics.recorder,
    config.databasePreparedStatements,
  );
  await webhooks.start(events.hub);
  started.push({ name: 'webhooks', stop: () => webhooks.stop() });
  let worker: Worker | undefined;
  if (config.worker.enabled) {
    const workerPool = createWorkerPool(database.url, config, logger);
    started.push({ name: 'worker pool', stop: () => workerPool.end() });
    const w = await startWorker({
      pool: workerPool,
      queue,
      store,
      config: config.processing,
      logger,
      metrics: metrics.recorder,
    });
    started.push({ name: 'worker', stop: () => w.stop() });
    worker = w;
  }
  const metricsUrl = await listenForMetrics(config, metrics, logger, started);
  const audit = startAudit(pool, config, logger, started);
  // One gate for every door that opens upload sessions (POST /media, the form, tus, gRPC).
  const admission = new Admission(
    () => queue.oldestWaitingSeconds('image'),
    config.admission.maxBacklogSeconds,
    logger,
  );
  const app = await buildHttpServer({
    config,
    logger,
    db: pool,
    authenticator,
    media,
    processing,
    playback,
    posts,
    profiles,
    circles,
    devices,
    multipart,
    tus,
    store,
    urls,
    events,
    webhooks,
    audit,
    admission,
    rateWindows: httpRateWindows(config, pool, logger, started),
    metrics,
  });
  started.push({
    name: 'http server',
    async stop() {
      // Stop accepting and let in-flight requests finish; connections still busy after the
      // grace period (a stalled upload) are cut so shutdown cannot hang.
      const force = setTimeout(() => app.server.closeAllConnections(), 10_000);
      await app.close();
      clearTimeout(force);
    },
  });
  const url = await app.listen({ host: config.host, port: config.port }).catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new StartupError(
        `PORT ${config.port} on ${config.host} is in use; stop what listens there or set PORT to a free port`,
      );
    }
    throw err;
  });
  const grpc = config.grpc
    ? await startGrpcServer(
        { media, posts, serviceToken: config.grpc.serviceToken, logger, admission },
        config.grpc,
      )
    : undefined;
  if (grpc) started.push({ name: 'grpc server', stop: () => grpc.close() });
  logger.info(
    { url, storage: config.storage.backend, database: config.database.kind },
    'mediary is listening',
  );

  let closing: Promise<void> | undefined;
  return {
    app,
    database,
    queue,
    worker,
    media,
    grpcPort: grpc?.port,
    metricsUrl,
    url,
    close() {
      closing ??= stopStarted();
      return closing;
    },
  };
}

/** The deletion outbox's drain, the CDN purge and device retention (issue 18). */
function startDeletion(
  pool: Pool,
  media: MediaService,
  config: Config,
  logger: Logger,
  started: { name: string; stop: () => Promise<void> }[],
) {
  const { outbox } = media.deletion;
  const { drainIntervalSeconds, retentionIntervalSeconds, cdnPurge } = config.deletion;
  if (cdnPurge) outbox.usePurge(new HttpCdnPurge(cdnPurge));
  started.push({
    name: 'deletion outbox',
    stop: startDeletionDrain(pool, outbox, drainIntervalSeconds, logger),
  });
  started.push({
    name: 'device retention',
    stop: startDeviceRetention(pool, media, retentionIntervalSeconds, logger),
  });
}

/**
 * Profile images, and the listener that swaps a waiting image in as soon as the database says it
 * is READY (or drops it when it FAILED); every (re)connect settles what was missed meanwhile.
 */
function startProfiles(
  pool: Pool,
  media: MediaService,
  circles: CircleService,
  logger: Logger,
  started: { name: string; stop: () => Promise<void> }[],
): ProfileService {
  const profiles = new ProfileService(pool, media, logger, circles);
  const log = logger.child({ component: 'profiles' });
  const settle = (what: Promise<unknown>) => {
    what.catch((err: unknown) =>
      log.warn({ err }, 'could not settle a profile image now; the next read will'),
    );
  };
  const listener = NotificationListener.start(
    pool,
    {
      channels: { [PROFILE_CHANNEL]: (userId) => settle(profiles.settle(userId)) },
      onConnect: () => settle(profiles.settleAll()),
    },
    log,
  );
  started.push({ name: 'profile listener', stop: () => listener.stop() });
  return profiles;
}

/** The events outbox's readers in this process: live streams and retention (issue 20). */
function startEvents(
  pool: Pool,
  signer: UrlSigner,
  config: Config,
  logger: Logger,
  started: { name: string; stop: () => Promise<void> }[],
) {
  const hub = new EventHub(pool, logger);
  started.push({ name: 'event listener', stop: () => hub.stop() });
  const stopRetention = startEventRetention(
    pool,
    { intervalSeconds: config.sweeper.intervalSeconds, retentionDays: config.events.retentionDays },
    logger,
  );
  started.push({ name: 'event retention', stop: stopRetention });
  return { hub, access: new StreamAccess(pool, signer, config.events.tokenTtlSeconds) };
}

/** The store, timed per operation when metrics are on. */
function metricStore<S extends ObjectStore>(store: S, metrics: ProcessMetrics): S {
  return metrics.prometheus ? instrumentStore(store, metrics.recorder) : store;
}

/** The metrics listener of its own (METRICS_PORT), if configured; its URL. */
async function listenForMetrics(
  config: Config,
  metrics: ProcessMetrics,
  logger: Logger,
  started: { name: string; stop: () => Promise<void> }[],
): Promise<string | undefined> {
  if (!config.metrics.listener) return undefined;
  const listener = await startMetricsListener(config.metrics.listener, metrics, logger);
  started.push({ name: 'metrics listener', stop: () => listener.close() });
  return listener.url;
}

/** The audit log (issue 21): its reader, the writer of read records, and retention. */
function startAudit(
  pool: Pool,
  config: Config,
  logger: Logger,
  started: { name: string; stop: () => Promise<void> }[],
) {
  const writer = new AuditWriter(pool, logger);
  // Stopped after the HTTP server (pushed before it): the last requests' rows are written.
  started.push({ name: 'audit writer', stop: () => writer.close() });
  const stopRetention = startAuditRetention(
    pool,
    { intervalSeconds: config.sweeper.intervalSeconds, retentionDays: config.audit.retentionDays },
    logger,
  );
  started.push({ name: 'audit retention', stop: stopRetention });
  return { writer, queries: new AuditQueries(pool, config.auth.adminUserIds) };
}

/**
 * The worker (inside `serve`, or `mediary worker`) gets its own connection pool: on the shared one
 * its statements (claim,
 * progress, READY) queued behind every HTTP request's, and under upload load processing starved
 * (issue 22: 0.08× its idle rate at 200 clients, with up to 245 requests waiting for a
 * connection). Sized for its slots (a claim transaction and the job's own statements each), its
 * LISTEN connection and the reaper. Its statements are a fixed set (claims, the media row's
 * transitions, the queue's), so under DATABASE_PREPARED_STATEMENTS they are all named ones.
 */
export function createWorkerPool(url: string, config: Config, logger: Logger): Pool {
  return createPool(url, logger, config.processing.concurrency * 2 + 2, config.databaseTimeouts, {
    namedStatements: config.databasePreparedStatements,
  });
}

function queueOptions(config: Config) {
  const p = config.processing;
  return {
    retryLimit: p.retryLimit,
    retryDelaySeconds: p.retryDelaySeconds,
    // pg-boss' own expiry is only a backstop behind the worker's timeout and the claim reaper.
    // Video jobs extend their own limit to the video budget (+ 60 s), so the expiry covers both.
    expireInSeconds: Math.max(p.jobTimeoutSeconds, p.video.jobTimeoutSeconds + 60) + 60,
  };
}

export interface WorkerProcess {
  worker: Worker;
  /** http://host:port of the metrics listener (METRICS_PORT), if it runs. */
  metricsUrl: string | undefined;
  close(): Promise<void>;
}

/** `mediary worker`: the processing worker alone, beside a running API (scale out by starting more). */
export async function startWorkerProcess(config: Config, logger: Logger): Promise<WorkerProcess> {
  const database = await openDatabase(config, logger, 'attach');
  const { pool } = database;
  const queue = await PgBossQueue.start(pool, logger, queueOptions(config), {
    owner: false,
    prepared: config.databasePreparedStatements,
  });
  // The worker has no HTTP API: its metrics are served only by a listener of their own.
  const metrics = processMetrics(
    { ...config.metrics, token: config.metrics.listener ? config.metrics.token : undefined },
    { logger, pool, sampleQueues: () => queueStats(pool) },
  );
  const urls = new PublicUrls(new UrlSigner(await signingSecret(config)), config.publicUrl);
  const store = metricStore(createStore(config, config.storage.backend, urls), metrics);
  const started: { name: string; stop: () => Promise<void> }[] = [];
  let worker: Worker;
  let metricsUrl: string | undefined;
  // The worker's statements on a pool of their own, as in `serve` (named ones); the process pool
  // serves pg-boss's maintenance and the metrics.
  const workerPool = createWorkerPool(database.url, config, logger);
  try {
    metricsUrl = await listenForMetrics(config, metrics, logger, started);
    worker = await startWorker({
      pool: workerPool,
      queue,
      store,
      config: config.processing,
      logger,
      metrics: metrics.recorder,
    });
  } catch (err) {
    for (const { stop } of started.splice(0).reverse()) await stop();
    await workerPool.end();
    await queue.stop();
    await database.close();
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    worker,
    metricsUrl,
    close() {
      closing ??= (async () => {
        for (const { stop } of started.splice(0).reverse()) await stop();
        await worker.stop();
        await workerPool.end();
        await queue.stop();
        await database.close();
      })();
      return closing;
    },
  };
}
