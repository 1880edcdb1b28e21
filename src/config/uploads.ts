import os from 'node:os';
import path from 'node:path';
import { bool, MiB, int, str, type Env } from './env.ts';

/**
 * Uploads: what may be uploaded, how long sessions and their URLs live, the multipart and tus
 * protocols, and the sweeper that removes what uploads left behind (expired sessions, orphans,
 * post media no post took).
 */
export interface UploadSettings {
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
  multipart: {
    /** Uploads above this size use the multipart protocol. */
    thresholdBytes: number;
    /** Preferred part size (≥ 5 MiB; grown for files that would need more than 10,000 parts). */
    partSizeBytes: number;
    partUrlTtlSeconds: number;
  };
  /** The tus 1.0 endpoint (`/api/v1/tus/`, src/media/tus.ts). */
  tus: {
    /**
     * Where tus uploads are staged on stores that are not local files (S3, GCS): at most one part
     * per upload waits here. On the local store uploads are staged under its own `.tus/`.
     */
    stagingDir: string;
    /** A PATCH without Upload-Checksum makes what it received durable (fsync + offset) this often. */
    checkpointBytes: number;
    /**
     * SHA-256 of PATCH bodies in a worker thread instead of on the event loop: frees the event loop
     * (≈ 1 CPU-s per GiB) at ≈ 0.3–0.7 CPU-s per GiB more in all, so by default only with more than
     * two cores (on two, measured slower: docs/BENCHMARKS.md).
     */
    hashThread: boolean;
  };
  sweeper: { intervalSeconds: number; orphanGraceSeconds: number };
  posts: {
    /** Media on one post. */
    maxMedia: number;
    /** `purpose: "post"` media no post took within this long are deleted (runs with the sweeper). */
    mediaGraceSeconds: number;
  };
}

/** UPLOAD_*, MAX_*_BYTES, ALLOWED_MIME_TYPES, MULTIPART_*, PART_URL_TTL_SECONDS, TUS_*, SWEEP_*, POST_*. */
export function uploadSettings(env: Env, cwd: string, dataDir: string): UploadSettings {
  const allowed = str(env, 'ALLOWED_MIME_TYPES');
  return {
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
    multipart: {
      thresholdBytes: int(env, 'MULTIPART_THRESHOLD_BYTES', 16 * MiB, 5 * MiB, 5 * 1024 * MiB),
      partSizeBytes: int(env, 'MULTIPART_PART_SIZE_BYTES', 16 * MiB, 5 * MiB, 5 * 1024 * MiB),
      partUrlTtlSeconds: int(env, 'PART_URL_TTL_SECONDS', 15 * 60, 10, 7 * 24 * 3600),
    },
    tus: {
      stagingDir: path.resolve(cwd, str(env, 'TUS_STAGING_DIR') ?? path.join(dataDir, 'tus')),
      checkpointBytes: int(env, 'TUS_CHECKPOINT_BYTES', 16 * MiB, 64 * 1024, 1024 * MiB),
      hashThread: bool(env, 'TUS_HASH_THREAD', os.availableParallelism() >= 2),
    },
    sweeper: {
      intervalSeconds: int(env, 'SWEEP_INTERVAL_SECONDS', 300, 0, 7 * 24 * 3600),
      orphanGraceSeconds: int(env, 'ORPHAN_GRACE_SECONDS', 24 * 3600, 0, 30 * 24 * 3600),
    },
    posts: {
      maxMedia: int(env, 'POST_MAX_MEDIA', 20, 1, 100),
      mediaGraceSeconds: int(env, 'POST_MEDIA_GRACE_SECONDS', 24 * 3600, 0, 365 * 24 * 3600),
    },
  };
}
