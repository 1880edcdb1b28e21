import { MAX_KEY_OVERLAP_SECONDS } from '../contract/limits.ts';
import { ConfigError, int, list, str, url, type Env } from './env.ts';

/**
 * Who may do what, and how much: the URL-signing secret, user JWTs, device keys and claims,
 * administrators, rate limits and per-uploader quotas.
 */
export interface AuthSettings {
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
  /** Devices that owners manage (claim codes, key rotation). */
  devices: {
    /** How long a claim code stays usable. */
    claimTtlSeconds: number;
    /** The default overlap of a key rotation: the replaced key keeps working this long. */
    keyOverlapSeconds: number;
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
  /** Per-uploader limits checked when a session is created; 0 = no limit. */
  quotas: Quotas;
}

export interface Quotas {
  user: { storedBytes: number; openSessions: number };
  device: { storedBytes: number; openSessions: number };
}

/** SIGNING_SECRET, JWT_*, DEVICE_*, ADMIN_USER_IDS, RATE_LIMIT_*, QUOTA_*. */
export function authSettings(env: Env): AuthSettings {
  const signingSecret = str(env, 'SIGNING_SECRET');
  if (signingSecret !== undefined && signingSecret.length < 32) {
    throw new ConfigError('SIGNING_SECRET', 'must be at least 32 characters');
  }
  const jwtSecret = str(env, 'JWT_SECRET');
  if (jwtSecret !== undefined && jwtSecret.length < 32) {
    throw new ConfigError('JWT_SECRET', 'must be at least 32 characters (HS256 needs 256 bits)');
  }
  return {
    signingSecret,
    auth: {
      jwtSecret,
      jwksUrl: url(env, 'JWT_JWKS_URL'),
      issuer: str(env, 'JWT_ISSUER'),
      audience: str(env, 'JWT_AUDIENCE'),
      deviceKeyCacheSeconds: int(env, 'DEVICE_KEY_CACHE_SECONDS', 30, 0, 300),
      adminUserIds: list(str(env, 'ADMIN_USER_IDS')),
    },
    devices: {
      claimTtlSeconds: int(env, 'DEVICE_CLAIM_TTL_SECONDS', 600, 60, 3600),
      keyOverlapSeconds: int(env, 'DEVICE_KEY_OVERLAP_SECONDS', 3600, 0, MAX_KEY_OVERLAP_SECONDS),
    },
    rateLimit: {
      store: rateLimitStore(env),
      sessionsPerMinute: int(env, 'RATE_LIMIT_SESSIONS_PER_MINUTE', 600, 1, 1_000_000),
      authFailuresPerMinute: int(env, 'RATE_LIMIT_AUTH_FAILURES_PER_MINUTE', 60, 0, 1_000_000),
      deviceClaimsPerMinute: int(env, 'RATE_LIMIT_DEVICE_CLAIMS_PER_MINUTE', 10, 1, 1_000_000),
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
  };
}

function rateLimitStore(env: Env): 'postgres' | 'memory' {
  const raw = str(env, 'RATE_LIMIT_STORE') ?? 'postgres';
  if (raw !== 'postgres' && raw !== 'memory') {
    throw new ConfigError('RATE_LIMIT_STORE', `must be "postgres" or "memory", got "${raw}"`);
  }
  return raw;
}
