import path from 'node:path';
import { ConfigError, bool, int, list, oneOf, str, url, type Env } from './env.ts';

/** Where objects live: the local store, an S3 bucket (with tiered archiving) or a GCS bucket. */
export interface StorageSettings {
  /** `dir` is the local store's root (also the source of `storage migrate --from local`). */
  storage: { backend: 'local' | 's3' | 'gcs'; dir: string };
  /** Set when S3_BUCKET is (required for STORAGE_BACKEND=s3). */
  s3: S3Config | undefined;
  /** Set when GCS_BUCKET is (required for STORAGE_BACKEND=gcs). */
  gcs: GcsConfig | undefined;
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

/** STORAGE_BACKEND, LOCAL_STORAGE_DIR (default `dataDir`/objects), S3_*, GCS_*. */
export function storageSettings(env: Env, cwd: string, dataDir: string): StorageSettings {
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
  return {
    storage: {
      backend,
      dir: path.resolve(cwd, str(env, 'LOCAL_STORAGE_DIR') ?? path.join(dataDir, 'objects')),
    },
    s3,
    gcs,
  };
}

function s3Config(env: Env): S3Config | undefined {
  const bucket = str(env, 'S3_BUCKET');
  if (bucket === undefined) return undefined;
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
    throw new ConfigError('S3_BUCKET', `must be a valid bucket name, got "${bucket}"`);
  }
  const endpoint = url(env, 'S3_ENDPOINT')?.replace(/\/+$/, '');
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
    corsOrigins: list(str(env, 'S3_CORS_ORIGINS')),
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
