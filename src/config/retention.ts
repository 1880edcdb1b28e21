import { ConfigError, int, str, url, type Env } from './env.ts';

/**
 * What is removed, and when: deleted media (the deletion outbox's drain and the CDN purge), the
 * per-device retention job, and the audit log's retention.
 */
export interface RetentionSettings {
  deletion: DeletionConfig;
  /** The audit log (migration 0027). */
  audit: {
    /** Rows older than this are purged (periodically, once per cluster); 0 = kept forever. */
    retentionDays: number;
  };
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

/** DELETION_DRAIN_INTERVAL_SECONDS, RETENTION_INTERVAL_SECONDS, CDN_PURGE_* (default file URLs on `publicUrl`), AUDIT_RETENTION_DAYS. */
export function retentionSettings(env: Env, publicUrl: string): RetentionSettings {
  return {
    deletion: {
      drainIntervalSeconds: int(env, 'DELETION_DRAIN_INTERVAL_SECONDS', 60, 0, 24 * 3600),
      retentionIntervalSeconds: int(env, 'RETENTION_INTERVAL_SECONDS', 3600, 0, 7 * 24 * 3600),
      cdnPurge: cdnPurgeConfig(env, publicUrl),
    },
    audit: {
      retentionDays: int(env, 'AUDIT_RETENTION_DAYS', 365, 0, 36_500),
    },
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
