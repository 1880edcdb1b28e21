import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_KEY_OVERLAP_SECONDS } from './contract/limits.ts';

/** Every setting Mediary reads, parsed once at start-up and passed down. */
export interface Config {
  host: string;
  port: number;
  /** Base URL clients use to reach this API; signed local-store URLs are built on it. */
  publicUrl: string;
  /**
   * Web origins (`scheme://host[:port]`, as browsers send them) allowed to call the API from
   * another origin; `['*']` = any origin; empty = no CORS headers at all.
   */
  corsOrigins: readonly string[];
  dataDir: string;
  logLevel: string;
  database: { kind: 'external'; url: string } | { kind: 'embedded'; dir: string; port: number };
  /**
   * Hot statements (creating an upload session) run as named prepared statements: Postgres parses
   * and plans them once per connection. Off for poolers that cannot keep them (PgBouncer before
   * 1.21 in transaction mode).
   */
  databasePreparedStatements: boolean;
  databaseTimeouts: DatabaseTimeouts;
  /** Connections of the request pool of each `serve` process (DATABASE_POOL_SIZE). */
  databasePoolSize: number;
  /** `dir` is the local store's root (also the source of `storage migrate --from local`). */
  storage: { backend: 'local' | 's3' | 'gcs'; dir: string };
  /** Set when S3_BUCKET is (required for STORAGE_BACKEND=s3). */
  s3: S3Config | undefined;
  /** Set when GCS_BUCKET is (required for STORAGE_BACKEND=gcs). */
  gcs: GcsConfig | undefined;
  multipart: {
    /** Uploads above this size use the multipart protocol. */
    thresholdBytes: number;
    /** Preferred part size (≥ 5 MiB; grown for files that would need more than 10,000 parts). */
    partSizeBytes: number;
    partUrlTtlSeconds: number;
  };
  sweeper: { intervalSeconds: number; orphanGraceSeconds: number };
  /** Load diagnostics: event-loop delay and Postgres pool waits logged every interval (0 = off). */
  diagnostics: { intervalSeconds: number };
  /**
   * Admission control (issue 22): new upload sessions are refused with 503 + Retry-After while the
   * oldest processing job waiting in the queue is older than `maxBacklogSeconds` (0 = never), so
   * processing keeps up with uploads instead of starving behind them.
   */
  admission: { maxBacklogSeconds: number };
  /** The tus 1.0 endpoint (`/api/v1/tus/`, src/media/tus.ts). */
  tus: {
    /**
     * Where tus uploads are staged on stores that are not local files (S3, GCS): at most one part
     * per upload waits here. On the local store uploads are staged under its own `.tus/`.
     */
    stagingDir: string;
    /** A PATCH without Upload-Checksum makes what it received durable (fsync + offset) this often. */
    checkpointBytes: number;
  };
  posts: {
    /** Media on one post. */
    maxMedia: number;
    /** `purpose: "post"` media no post took within this long are deleted (runs with the sweeper). */
    mediaGraceSeconds: number;
  };
  /** HMAC secret for URLs signed by this API (local store). Undefined → generated under dataDir. */
  signingSecret: string | undefined;
  auth: {
    jwtSecret: string | undefined;
    jwksUrl: string | undefined;
    issuer: string | undefined;
    audience: string | undefined;
    /**
     * Seconds a device key → principal lookup is cached in memory (0 = off). Revocations and owner
     * changes reach every server at once through LISTEN/NOTIFY (the cache is bypassed while that
     * connection is down), so this is only a backstop.
     */
    deviceKeyCacheSeconds: number;
    /** Users (JWT `sub`) who administer this service: they read the whole audit log (ADMIN_USER_IDS). */
    adminUserIds: readonly string[];
  };
  /** The audit log (migration 0027). */
  audit: {
    /** Rows older than this are purged (periodically, once per cluster); 0 = kept forever. */
    retentionDays: number;
  };
  uploads: {
    sessionTtlSeconds: number;
    uploadUrlTtlSeconds: number;
    downloadUrlTtlSeconds: number;
    maxImageBytes: number;
    maxVideoBytes: number;
    /** Uploads for purpose `profile` (images only) may be at most this large. */
    maxProfileImageBytes: number;
    allowedMimeTypes: readonly string[] | undefined;
    /** An upload body with no byte for this long is aborted (408); 0 = no limit. */
    idleTimeoutSeconds: number;
  };
  rateLimit: {
    /**
     * Where the fixed-window counters live: `postgres` (one budget across every API process
     * sharing the database) or `memory` (per process: N processes allow N times the limit).
     */
    store: 'postgres' | 'memory';
    sessionsPerMinute: number;
    /** Failed authentications per client IP per minute before that IP gets 429s (0 = off). */
    authFailuresPerMinute: number;
    /** Device claims started per client IP, and claim codes entered per user, per minute. */
    deviceClaimsPerMinute: number;
  };
  /** Devices that owners manage (claim codes, key rotation). */
  devices: {
    /** How long a claim code stays usable. */
    claimTtlSeconds: number;
    /** The default overlap of a key rotation: the replaced key keeps working this long. */
    keyOverlapSeconds: number;
  };
  /** Per-uploader limits checked when a session is created; 0 = no limit. */
  quotas: Quotas;
  /** The internal gRPC API (proto/mediary/v1/media.proto); undefined when GRPC_PORT is unset. */
  grpc: { host: string; port: number; serviceToken: string } | undefined;
  worker: { enabled: boolean };
  /** The web app `mediary serve` serves at `/`: the folder built by `npm run build:client`. */
  web: { dir: string };
  processing: ProcessingConfig;
  events: EventsConfig;
  webhooks: WebhooksConfig;
  deletion: DeletionConfig;
  metrics: MetricsConfig;
}

/**
 * Deleted media (src/media/deletion-outbox.ts): how often the outbox is drained (objects a crash or
 * a failing store left, purges to retry), the optional CDN purge, and device retention's timer.
 */
export interface DeletionConfig {
  /** The outbox drain runs this often (once per cluster); 0 = never (deletes still act at once). */
  drainIntervalSeconds: number;
  /** The device retention job runs this often (once per cluster); 0 = never. */
  retentionIntervalSeconds: number;
  /** Undefined when CDN_PURGE_URL is unset. */
  cdnPurge: CdnPurgeConfig | undefined;
}

/** A POST to `url` with `{"files": [...]}` (Cloudflare's purge-by-URL shape) per deleted media. */
export interface CdnPurgeConfig {
  url: string;
  /** `Name: value` sent with every purge (e.g. `Authorization: Bearer …`); a secret, never logged. */
  header: { name: string; value: string } | undefined;
  /**
   * How the CDN addresses a purged object: URL templates with `{key}` (the object key, each
   * segment percent-encoded) and/or `{mediaId}`.
   */
  fileUrlTemplates: readonly string[];
  /** Files per request (Cloudflare accepts 30 on most plans). */
  batchSize: number;
  timeoutMs: number;
  /** A purge failing this many times is given up (logged as an error); the objects are gone anyway. */
  maxAttempts: number;
}

/**
 * Prometheus metrics (`GET /metrics`), off unless one of the two ways to reach them is set: a
 * listener of its own (METRICS_PORT, loopback by default: nothing public ever sees it), or the
 * API's own port behind a bearer token (METRICS_TOKEN: for platforms with one port).
 */
export interface MetricsConfig {
  /** Serve /metrics on a listener of its own (serve and `mediary worker`); undefined: none. */
  listener: { host: string; port: number } | undefined;
  /**
   * Bearer token /metrics asks for: on the API's port (the route exists only when this is set)
   * and on the metrics listener too.
   */
  token: string | undefined;
}

/** Whether metrics are collected at all (somewhere serves them). */
export const metricsEnabled = (m: MetricsConfig): boolean =>
  m.listener !== undefined || m.token !== undefined;

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

/**
 * Bounds on waiting for the database, so a hung or overloaded Postgres answers 503 within seconds
 * instead of holding requests (0 = no bound). Migrations run on their own connection without them.
 */
export interface DatabaseTimeouts {
  /** Opening a connection (TCP + start-up + authentication) or waiting for a free pooled one. */
  connectMs: number;
  /**
   * Server side `statement_timeout`; the client also stops waiting this long + 1 s later (a
   * server too hung to cancel anything), drops the connection and answers 503.
   */
  statementMs: number;
  /** Server side `idle_in_transaction_session_timeout`: a transaction left open by a stuck process. */
  idleInTransactionMs: number;
}

export interface Quotas {
  user: { storedBytes: number; openSessions: number };
  device: { storedBytes: number; openSessions: number };
}

/** Background processing: the queue's retry policy, the worker runtime and the image pipeline. */
export interface ProcessingConfig {
  /** Retries after the first attempt; then the job goes to the dead-letter queue. */
  retryLimit: number;
  /** First retry delay; doubles (with jitter) on each further retry. */
  retryDelaySeconds: number;
  /** Jobs one worker process runs at once. */
  concurrency: number;
  /** A job running longer is aborted and retried. */
  jobTimeoutSeconds: number;
  /** Fallback poll for delayed retries; new jobs wake idle workers through LISTEN/NOTIFY. */
  pollIntervalMs: number;
  /** On shutdown, in-flight jobs get this long to finish before they are handed back to the queue. */
  shutdownGraceSeconds: number;
  variantFormat: 'webp' | 'avif';
  /** Decompression-bomb guard: images with more pixels fail before decoding. */
  maxPixels: number;
  /**
   * Images whose decode would take more bytes than this (estimated from the header: pixels ×
   * channels × bytes per sample, ×2 interlaced/progressive) fail before decoding.
   */
  maxDecodeBytes: number;
  /** Decode memory all image jobs of one worker process may hold at once; others wait. */
  memoryBudgetBytes: number;
  /** Command that converts HEIC/HEIF to JPEG (Debian: libheif-examples). */
  heifConvert: string;
  video: VideoConfig;
  /** Scanning originals for malware before they become READY (off by default). */
  malwareScan: MalwareScanConfig;
}

/**
 * ClamAV's daemon scans every original (INSTREAM over its socket) before the job makes variants;
 * `off`: nothing is scanned. See README "Malware scanning" and docs/RUNBOOKS/MALWARE.md.
 */
export type MalwareScanConfig =
  | { kind: 'off' }
  | {
      kind: 'clamd';
      /** clamd's `LocalSocket`, or its `TCPSocket` (+ `TCPAddr`). */
      address: { socket: string } | { host: string; port: number };
      /** One scan (connect + stream + verdict); past it the attempt fails and is retried. */
      timeoutMs: number;
      /** Larger originals are not sent (FAILED `too_large_to_scan`); keep ≤ clamd's `StreamMaxLength`. */
      maxBytes: number;
    };

/** The video pipeline (Debian's ffmpeg/ffprobe) and HLS playback. */
export interface VideoConfig {
  ffmpegPath: string;
  ffprobePath: string;
  /** Time budget of one video job (probe + poster + the whole ladder); past it the job FAILS. */
  jobTimeoutSeconds: number;
  /** Longer videos fail before transcoding (a decompression-bomb guard for video). */
  maxDurationSeconds: number;
  /** Larger frames (displayed width × height) fail before transcoding. */
  maxPixels: number;
  /** Highest rung of the HLS ladder (lower it to save CPU); smaller sources stop earlier anyway. */
  maxRendition: '360p' | '720p' | '1080p' | '2160p';
  /** x264 preset of the HLS renditions. */
  preset: string;
  segmentSeconds: number;
  /** Lifetime of the playback tokens in rewritten HLS playlists. */
  tokenTtlSeconds: number;
  /** Parent of the per-job work directories (VIDEO_TMP_DIR; default: the OS temp dir). */
  tmpDir: string | undefined;
}

export interface S3Config {
  bucket: string;
  region: string;
  endpoint: string | undefined;
  forcePathStyle: boolean;
  enforcesChecksum: boolean;
  /** Web origins allowed to PUT/GET the bucket directly (`mediary storage setup` applies them). */
  corsOrigins: readonly string[];
  /** TCP connect timeout per attempt. */
  connectTimeoutMs: number;
  /** A socket idle this long (no byte either way) fails the attempt: a hung store, a stalled stream. */
  socketTimeoutMs: number;
  /** Whole-call deadline (all attempts) of bodiless calls: HEAD, lists, multipart control, delete. */
  operationTimeoutMs: number;
  /** Attempts per call, first included (SDK standard retry: backoff + retry quota). */
  maxAttempts: number;
  /** Tiered storage of originals (docs/DEPLOY-TIERING.md); undefined = off. */
  archive: S3ArchiveConfig | undefined;
  /** How `POST /media/{id}/restore` asks the store to bring an archived original back. */
  restore: { days: number; tier: 'Standard' | 'Bulk' | 'Expedited' };
}

export interface S3ArchiveConfig {
  /** Originals move to `storageClass` this many days after they were written (lifecycle rule). */
  afterDays: number;
  storageClass: string;
}

export interface GcsConfig {
  bucket: string;
  projectId: string | undefined;
  /** A service-account JSON key (GCS_KEY_FILE, else GOOGLE_APPLICATION_CREDENTIALS); unset on Cloud Run. */
  keyFile: string | undefined;
  /** Without a key: the service account whose IAM signBlob signs URLs (default: the runtime's). */
  serviceAccountEmail: string | undefined;
  /** Another Cloud Storage endpoint (a test stand-in, Private Service Connect); default Google's. */
  apiEndpoint: string | undefined;
  /** Another IAM Credentials endpoint for signBlob (base ending in /v1/projects/-/serviceAccounts/). */
  signingEndpoint: string | undefined;
  /** Web origins allowed to PUT/GET the bucket directly (`mediary storage setup` applies them). */
  corsOrigins: readonly string[];
  /** Whole-call deadline of bodiless calls. */
  operationTimeoutMs: number;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`Invalid configuration: ${variable} ${message}`);
    this.name = 'ConfigError';
  }
}

/**
 * A start-up failure the operator fixes in the environment (a port in use): reported in one line,
 * without a stack trace.
 */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

type Env = Record<string, string | undefined>;

function str(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number, got "${raw}"`);
  const n = Number(raw);
  if (n < min || n > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  if (/^(1|true|yes|on)$/i.test(raw)) return true;
  if (/^(0|false|no|off)$/i.test(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function rateLimitStore(env: Env): 'postgres' | 'memory' {
  const raw = str(env, 'RATE_LIMIT_STORE') ?? 'postgres';
  if (raw !== 'postgres' && raw !== 'memory') {
    throw new ConfigError('RATE_LIMIT_STORE', `must be "postgres" or "memory", got "${raw}"`);
  }
  return raw;
}

function url(env: Env, name: string): string | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  try {
    return new URL(raw).toString();
  } catch {
    throw new ConfigError(name, `must be a URL, got "${raw}"`);
  }
}

/**
 * CORS_ORIGINS: exact origins, compared byte for byte with the browser's `Origin` header, so each
 * must already be in that form (lower case, no default port, no path or trailing slash); or `*`
 * alone for any origin.
 */
function origins(env: Env, name: string): string[] {
  const raw = str(env, name);
  if (raw === undefined) return [];
  const list = [...new Set(raw.split(',').map((o) => o.trim()))].filter((o) => o.length > 0);
  if (list.includes('*')) {
    if (list.length > 1) throw new ConfigError(name, `"*" (any origin) must be the only entry, got "${raw}"`);
    return list;
  }
  for (const o of list) {
    let origin: string | undefined;
    try {
      const u = new URL(o);
      if (u.protocol === 'http:' || u.protocol === 'https:') origin = u.origin;
    } catch {
      origin = undefined;
    }
    if (origin === undefined)
      throw new ConfigError(name, `must list origins like https://app.example.com, got "${o}"`);
    if (origin !== o) {
      throw new ConfigError(
        name,
        `"${o}" is not an origin as browsers send it (scheme://host[:port], no path); use "${origin}"`,
      );
    }
  }
  return list;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const MiB = 1024 * 1024;

export function loadConfig(env: Env = process.env, cwd = process.cwd()): Config {
  const port = int(env, 'PORT', 8080, 0, 65535);
  const host = str(env, 'HOST') ?? '0.0.0.0';
  const dataDir = path.resolve(cwd, str(env, 'DATA_DIR') ?? 'data');
  const logLevel = str(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);

  const databaseUrl = str(env, 'DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'must start with postgres:// or postgresql://');
  }
  const database: Config['database'] = databaseUrl
    ? { kind: 'external', url: databaseUrl }
    : {
        kind: 'embedded',
        dir: path.join(dataDir, 'postgres'),
        port: int(env, 'EMBEDDED_PG_PORT', 54329, 1024, 65535),
      };

  const backend = str(env, 'STORAGE_BACKEND') ?? 'local';
  if (backend !== 'local' && backend !== 's3' && backend !== 'gcs') {
    throw new ConfigError('STORAGE_BACKEND', `must be "local", "s3" or "gcs", got "${backend}"`);
  }
  const s3 = s3Config(env);
  if (backend === 's3' && s3 === undefined)
    throw new ConfigError('S3_BUCKET', 'is required when STORAGE_BACKEND=s3');
  const gcs = gcsConfig(env, cwd);
  if (backend === 'gcs' && gcs === undefined)
    throw new ConfigError('GCS_BUCKET', 'is required when STORAGE_BACKEND=gcs');
  const storage: Config['storage'] = {
    backend,
    dir: path.resolve(cwd, str(env, 'LOCAL_STORAGE_DIR') ?? path.join(dataDir, 'objects')),
  };

  const signingSecret = str(env, 'SIGNING_SECRET');
  if (signingSecret !== undefined && signingSecret.length < 32) {
    throw new ConfigError('SIGNING_SECRET', 'must be at least 32 characters');
  }
  const jwtSecret = str(env, 'JWT_SECRET');
  if (jwtSecret !== undefined && jwtSecret.length < 32) {
    throw new ConfigError('JWT_SECRET', 'must be at least 32 characters (HS256 needs 256 bits)');
  }

  const allowed = str(env, 'ALLOWED_MIME_TYPES');
  const publicUrl = (url(env, 'PUBLIC_URL') ?? `http://localhost:${port}/`).replace(/\/+$/, '');

  return {
    host,
    port,
    publicUrl,
    corsOrigins: origins(env, 'CORS_ORIGINS'),
    dataDir,
    logLevel,
    database,
    databasePreparedStatements: bool(env, 'DATABASE_PREPARED_STATEMENTS', true),
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 20, 1, 1000),
    databaseTimeouts: {
      connectMs: int(env, 'DATABASE_CONNECT_TIMEOUT_MS', 3000, 0, 600_000),
      statementMs: int(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 5000, 0, 3_600_000),
      idleInTransactionMs: int(env, 'DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS', 60_000, 0, 3_600_000),
    },
    storage,
    s3,
    gcs,
    multipart: {
      thresholdBytes: int(env, 'MULTIPART_THRESHOLD_BYTES', 16 * MiB, 5 * MiB, 5 * 1024 * MiB),
      partSizeBytes: int(env, 'MULTIPART_PART_SIZE_BYTES', 16 * MiB, 5 * MiB, 5 * 1024 * MiB),
      partUrlTtlSeconds: int(env, 'PART_URL_TTL_SECONDS', 15 * 60, 10, 7 * 24 * 3600),
    },
    tus: {
      stagingDir: path.resolve(cwd, str(env, 'TUS_STAGING_DIR') ?? path.join(dataDir, 'tus')),
      checkpointBytes: int(env, 'TUS_CHECKPOINT_BYTES', 16 * MiB, 64 * 1024, 1024 * MiB),
    },
    diagnostics: { intervalSeconds: int(env, 'DIAGNOSTICS_INTERVAL_SECONDS', 0, 0, 3600) },
    admission: { maxBacklogSeconds: int(env, 'ADMISSION_MAX_BACKLOG_SECONDS', 0, 0, 7 * 24 * 3600) },
    sweeper: {
      intervalSeconds: int(env, 'SWEEP_INTERVAL_SECONDS', 300, 0, 7 * 24 * 3600),
      orphanGraceSeconds: int(env, 'ORPHAN_GRACE_SECONDS', 24 * 3600, 0, 30 * 24 * 3600),
    },
    posts: {
      maxMedia: int(env, 'POST_MAX_MEDIA', 20, 1, 100),
      mediaGraceSeconds: int(env, 'POST_MEDIA_GRACE_SECONDS', 24 * 3600, 0, 365 * 24 * 3600),
    },
    signingSecret,
    auth: {
      jwtSecret,
      jwksUrl: url(env, 'JWT_JWKS_URL'),
      issuer: str(env, 'JWT_ISSUER'),
      audience: str(env, 'JWT_AUDIENCE'),
      deviceKeyCacheSeconds: int(env, 'DEVICE_KEY_CACHE_SECONDS', 30, 0, 300),
      adminUserIds: list(str(env, 'ADMIN_USER_IDS')),
    },
    audit: {
      retentionDays: int(env, 'AUDIT_RETENTION_DAYS', 365, 0, 36_500),
    },
    uploads: {
      sessionTtlSeconds: int(env, 'UPLOAD_SESSION_TTL_SECONDS', 24 * 3600, 60, 30 * 24 * 3600),
      uploadUrlTtlSeconds: int(env, 'UPLOAD_URL_TTL_SECONDS', 15 * 60, 10, 7 * 24 * 3600),
      downloadUrlTtlSeconds: int(env, 'DOWNLOAD_URL_TTL_SECONDS', 5 * 60, 10, 7 * 24 * 3600),
      maxImageBytes: int(env, 'MAX_IMAGE_BYTES', 50 * MiB, 1, Number.MAX_SAFE_INTEGER),
      maxVideoBytes: int(env, 'MAX_VIDEO_BYTES', 10 * 1024 * MiB, 1, Number.MAX_SAFE_INTEGER),
      maxProfileImageBytes: int(env, 'MAX_PROFILE_IMAGE_BYTES', 10 * MiB, 1, Number.MAX_SAFE_INTEGER),
      allowedMimeTypes: allowed ? allowed.split(',').map((s) => s.trim().toLowerCase()) : undefined,
      idleTimeoutSeconds: int(env, 'UPLOAD_IDLE_TIMEOUT_SECONDS', 30, 0, 3600),
    },
    rateLimit: {
      store: rateLimitStore(env),
      sessionsPerMinute: int(env, 'RATE_LIMIT_SESSIONS_PER_MINUTE', 600, 1, 1_000_000),
      authFailuresPerMinute: int(env, 'RATE_LIMIT_AUTH_FAILURES_PER_MINUTE', 60, 0, 1_000_000),
      deviceClaimsPerMinute: int(env, 'RATE_LIMIT_DEVICE_CLAIMS_PER_MINUTE', 10, 1, 1_000_000),
    },
    devices: {
      claimTtlSeconds: int(env, 'DEVICE_CLAIM_TTL_SECONDS', 600, 60, 3600),
      keyOverlapSeconds: int(env, 'DEVICE_KEY_OVERLAP_SECONDS', 3600, 0, MAX_KEY_OVERLAP_SECONDS),
    },
    grpc: grpcConfig(env),
    web: {
      dir: path.resolve(
        cwd,
        str(env, 'WEB_DIR') ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '../dist/web/app'),
      ),
    },
    quotas: {
      user: {
        storedBytes: int(env, 'QUOTA_USER_BYTES', 0, 0, Number.MAX_SAFE_INTEGER),
        openSessions: int(env, 'QUOTA_USER_OPEN_SESSIONS', 10_000, 0, 100_000_000),
      },
      device: {
        storedBytes: int(env, 'QUOTA_DEVICE_BYTES', 0, 0, Number.MAX_SAFE_INTEGER),
        openSessions: int(env, 'QUOTA_DEVICE_OPEN_SESSIONS', 10_000, 0, 100_000_000),
      },
    },
    worker: { enabled: bool(env, 'WORKER_ENABLED', true) },
    processing: processingConfig(env),
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
    deletion: {
      drainIntervalSeconds: int(env, 'DELETION_DRAIN_INTERVAL_SECONDS', 60, 0, 24 * 3600),
      retentionIntervalSeconds: int(env, 'RETENTION_INTERVAL_SECONDS', 3600, 0, 7 * 24 * 3600),
      cdnPurge: cdnPurgeConfig(env, publicUrl),
    },
    metrics: metricsConfig(env),
  };
}

function cdnPurgeConfig(env: Env, publicUrl: string): CdnPurgeConfig | undefined {
  const purgeUrl = url(env, 'CDN_PURGE_URL');
  if (purgeUrl === undefined) return undefined;
  const rawHeader = str(env, 'CDN_PURGE_HEADER');
  let header: CdnPurgeConfig['header'];
  if (rawHeader !== undefined) {
    const m = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):\s*(\S.*)$/.exec(rawHeader);
    if (!m)
      throw new ConfigError('CDN_PURGE_HEADER', 'must be "Name: value" (e.g. "Authorization: Bearer …")');
    header = { name: m[1]!, value: m[2]!.trim() };
  }
  const templates = (str(env, 'CDN_PURGE_FILE_URLS') ?? `${publicUrl}/{key}`)
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
  for (const t of templates) {
    if (!t.includes('{key}') && !t.includes('{mediaId}')) {
      throw new ConfigError('CDN_PURGE_FILE_URLS', `each template needs {key} or {mediaId}, got "${t}"`);
    }
    try {
      new URL(t.replaceAll('{key}', 'k').replaceAll('{mediaId}', 'm'));
    } catch {
      throw new ConfigError('CDN_PURGE_FILE_URLS', `"${t}" is not a URL template`);
    }
  }
  return {
    url: purgeUrl,
    header,
    fileUrlTemplates: templates,
    batchSize: int(env, 'CDN_PURGE_BATCH_SIZE', 30, 1, 1000),
    timeoutMs: int(env, 'CDN_PURGE_TIMEOUT_MS', 10_000, 100, 120_000),
    maxAttempts: int(env, 'CDN_PURGE_MAX_ATTEMPTS', 10, 1, 100),
  };
}

function metricsConfig(env: Env): MetricsConfig {
  const token = str(env, 'METRICS_TOKEN');
  if (token !== undefined && token.length < 32) {
    throw new ConfigError('METRICS_TOKEN', 'must be at least 32 characters');
  }
  const port = str(env, 'METRICS_PORT');
  return {
    listener:
      port === undefined
        ? undefined
        : { host: str(env, 'METRICS_HOST') ?? '127.0.0.1', port: int(env, 'METRICS_PORT', 0, 0, 65535) },
    token,
  };
}

function grpcConfig(env: Env): Config['grpc'] {
  const port = str(env, 'GRPC_PORT');
  if (port === undefined) return undefined;
  const serviceToken = str(env, 'GRPC_SERVICE_TOKEN');
  if (serviceToken === undefined || serviceToken.length < 32) {
    throw new ConfigError('GRPC_SERVICE_TOKEN', 'must be set (at least 32 characters) when GRPC_PORT is');
  }
  return {
    // Plaintext HTTP/2: loopback unless the operator says otherwise (a private network, a proxy).
    host: str(env, 'GRPC_HOST') ?? '127.0.0.1',
    port: int(env, 'GRPC_PORT', 0, 0, 65535),
    serviceToken,
  };
}

function processingConfig(env: Env): ProcessingConfig {
  const format = str(env, 'PROCESSING_VARIANT_FORMAT') ?? 'webp';
  if (format !== 'webp' && format !== 'avif') {
    throw new ConfigError('PROCESSING_VARIANT_FORMAT', `must be "webp" or "avif", got "${format}"`);
  }
  return {
    retryLimit: int(env, 'PROCESSING_RETRY_LIMIT', 3, 0, 20),
    retryDelaySeconds: int(env, 'PROCESSING_RETRY_DELAY_SECONDS', 5, 0, 3600),
    concurrency: int(env, 'PROCESSING_CONCURRENCY', 2, 1, 64),
    jobTimeoutSeconds: int(env, 'PROCESSING_JOB_TIMEOUT_SECONDS', 300, 5, 24 * 3600),
    pollIntervalMs: int(env, 'PROCESSING_POLL_INTERVAL_MS', 2000, 100, 600_000),
    shutdownGraceSeconds: int(env, 'PROCESSING_SHUTDOWN_GRACE_SECONDS', 25, 0, 3600),
    variantFormat: format,
    maxPixels: int(env, 'PROCESSING_MAX_PIXELS', 100_000_000, 1, 2_000_000_000),
    maxDecodeBytes: int(env, 'PROCESSING_MAX_DECODE_BYTES', 768 * MiB, 1, Number.MAX_SAFE_INTEGER),
    memoryBudgetBytes: int(env, 'WORKER_MEMORY_BUDGET_BYTES', 1024 * MiB, 1, Number.MAX_SAFE_INTEGER),
    heifConvert: str(env, 'HEIF_CONVERT_PATH') ?? 'heif-convert',
    video: videoConfig(env),
    malwareScan: malwareScanConfig(env),
  };
}

function malwareScanConfig(env: Env): MalwareScanConfig {
  const kind = str(env, 'MALWARE_SCAN') ?? 'off';
  if (kind === 'off') return { kind };
  if (kind !== 'clamd') throw new ConfigError('MALWARE_SCAN', `must be "off" or "clamd", got "${kind}"`);
  const socket = str(env, 'CLAMD_SOCKET');
  const host = str(env, 'CLAMD_HOST');
  if (socket !== undefined && host !== undefined) {
    throw new ConfigError('CLAMD_SOCKET', 'and CLAMD_HOST are both set; give one');
  }
  if (socket === undefined && host === undefined) {
    throw new ConfigError('CLAMD_SOCKET', 'or CLAMD_HOST is required when MALWARE_SCAN=clamd');
  }
  const timeoutSeconds = int(env, 'MALWARE_SCAN_TIMEOUT_SECONDS', 60, 1, 24 * 3600);
  const jobTimeout = int(env, 'PROCESSING_JOB_TIMEOUT_SECONDS', 300, 5, 24 * 3600);
  if (timeoutSeconds >= jobTimeout) {
    throw new ConfigError(
      'MALWARE_SCAN_TIMEOUT_SECONDS',
      `must be below PROCESSING_JOB_TIMEOUT_SECONDS (${jobTimeout}): the scan runs inside the job`,
    );
  }
  return {
    kind,
    address:
      socket !== undefined ? { socket } : { host: host!, port: int(env, 'CLAMD_PORT', 3310, 1, 65535) },
    timeoutMs: timeoutSeconds * 1000,
    // clamd's own default StreamMaxLength is 25 MiB; it refuses a longer stream.
    maxBytes: int(env, 'MALWARE_SCAN_MAX_BYTES', 25 * MiB, 1, 4 * 1024 * MiB - 1),
  };
}

const X264_PRESETS = ['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow'];

function videoConfig(env: Env): VideoConfig {
  const preset = str(env, 'VIDEO_PRESET') ?? 'veryfast';
  if (!X264_PRESETS.includes(preset)) {
    throw new ConfigError('VIDEO_PRESET', `must be one of ${X264_PRESETS.join(', ')}, got "${preset}"`);
  }
  const maxRendition = str(env, 'VIDEO_MAX_RENDITION') ?? '2160p';
  if (
    maxRendition !== '360p' &&
    maxRendition !== '720p' &&
    maxRendition !== '1080p' &&
    maxRendition !== '2160p'
  ) {
    throw new ConfigError('VIDEO_MAX_RENDITION', `must be 360p, 720p, 1080p or 2160p, got "${maxRendition}"`);
  }
  return {
    maxRendition,
    ffmpegPath: str(env, 'FFMPEG_PATH') ?? 'ffmpeg',
    ffprobePath: str(env, 'FFPROBE_PATH') ?? 'ffprobe',
    jobTimeoutSeconds: int(env, 'VIDEO_JOB_TIMEOUT_SECONDS', 3600, 5, 7 * 24 * 3600),
    maxDurationSeconds: int(env, 'VIDEO_MAX_DURATION_SECONDS', 3 * 3600, 1, 7 * 24 * 3600),
    maxPixels: int(env, 'VIDEO_MAX_PIXELS', 4096 * 2304, 1, 100_000_000),
    preset,
    segmentSeconds: int(env, 'HLS_SEGMENT_SECONDS', 4, 1, 30),
    tokenTtlSeconds: int(env, 'HLS_TOKEN_TTL_SECONDS', 3600, 10, 7 * 24 * 3600),
    tmpDir: str(env, 'VIDEO_TMP_DIR'),
  };
}

function s3Config(env: Env): S3Config | undefined {
  const bucket = str(env, 'S3_BUCKET');
  if (bucket === undefined) return undefined;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new ConfigError('S3_BUCKET', `must be a valid bucket name, got "${bucket}"`);
  }
  const endpoint = url(env, 'S3_ENDPOINT')?.replace(/\/+$/, '');
  const origins = str(env, 'S3_CORS_ORIGINS');
  return {
    bucket,
    region: str(env, 'S3_REGION') ?? 'us-east-1',
    endpoint,
    forcePathStyle: bool(env, 'S3_FORCE_PATH_STYLE', false),
    // AWS verifies x-amz-checksum-sha256; many compatible servers (Ceph 16) do not. Without an
    // endpoint we are talking to AWS; otherwise assume nothing unless the operator says so.
    enforcesChecksum: bool(env, 'S3_ENFORCES_CHECKSUM', endpoint === undefined),
    connectTimeoutMs: int(env, 'S3_CONNECT_TIMEOUT_MS', 3000, 100, 120_000),
    socketTimeoutMs: int(env, 'S3_SOCKET_TIMEOUT_MS', 20_000, 100, 600_000),
    operationTimeoutMs: int(env, 'S3_OPERATION_TIMEOUT_MS', 15_000, 100, 600_000),
    maxAttempts: int(env, 'S3_MAX_ATTEMPTS', 3, 1, 10),
    archive: s3Archive(env),
    restore: {
      days: int(env, 'S3_RESTORE_DAYS', 7, 1, 365),
      tier: oneOf(env, 'S3_RESTORE_TIER', ['Standard', 'Bulk', 'Expedited'] as const, 'Standard'),
    },
    corsOrigins: origins
      ? origins
          .split(',')
          .map((o) => o.trim())
          .filter((o) => o.length > 0)
      : [],
  };
}

/** S3_ARCHIVE_AFTER_DAYS (0 or unset = off) and S3_ARCHIVE_STORAGE_CLASS. */
function s3Archive(env: Env): S3ArchiveConfig | undefined {
  const afterDays = int(env, 'S3_ARCHIVE_AFTER_DAYS', 0, 0, 36_500);
  const storageClass = str(env, 'S3_ARCHIVE_STORAGE_CLASS') ?? 'GLACIER_IR';
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(storageClass)) {
    throw new ConfigError('S3_ARCHIVE_STORAGE_CLASS', `must be a storage class name, got "${storageClass}"`);
  }
  return afterDays > 0 ? { afterDays, storageClass } : undefined;
}

function oneOf<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = str(env, name);
  if (raw === undefined) return fallback;
  const found = allowed.find((a) => a.toLowerCase() === raw.toLowerCase());
  if (found === undefined) throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
  return found;
}

function list(raw: string | undefined): string[] {
  return raw
    ? raw
        .split(',')
        .map((o) => o.trim())
        .filter((o) => o.length > 0)
    : [];
}

function gcsConfig(env: Env, cwd: string): GcsConfig | undefined {
  const bucket = str(env, 'GCS_BUCKET');
  if (bucket === undefined) return undefined;
  if (!/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new ConfigError('GCS_BUCKET', `must be a valid bucket name, got "${bucket}"`);
  }
  const email = str(env, 'GCS_SERVICE_ACCOUNT_EMAIL');
  if (email !== undefined && !/^[^@\s]+@[^@\s]+$/.test(email)) {
    throw new ConfigError('GCS_SERVICE_ACCOUNT_EMAIL', `must be a service account email, got "${email}"`);
  }
  const keyFile = str(env, 'GCS_KEY_FILE') ?? str(env, 'GOOGLE_APPLICATION_CREDENTIALS');
  return {
    bucket,
    projectId: str(env, 'GCS_PROJECT_ID'),
    keyFile: keyFile !== undefined ? path.resolve(cwd, keyFile) : undefined,
    serviceAccountEmail: email,
    apiEndpoint: url(env, 'GCS_API_ENDPOINT')?.replace(/\/+$/, ''),
    signingEndpoint: url(env, 'GCS_SIGNING_ENDPOINT'),
    corsOrigins: list(str(env, 'GCS_CORS_ORIGINS')),
    operationTimeoutMs: int(env, 'GCS_OPERATION_TIMEOUT_MS', 15_000, 100, 600_000),
  };
}
