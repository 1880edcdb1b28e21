import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, int, str, url, type Env } from './env.ts';

/** The process and what it serves: the HTTP API and its web app, the internal gRPC API, logging. */
export interface ServerSettings {
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
  /** The internal gRPC API (proto/mediary/v1/media.proto); undefined when GRPC_PORT is unset. */
  grpc: GrpcConfig | undefined;
  /** The web app `mediary serve` serves at `/`: the folder built by `npm run build:client`. */
  web: { dir: string };
}

export interface GrpcConfig {
  host: string;
  port: number;
  serviceToken: string;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** PORT, HOST, DATA_DIR, LOG_LEVEL, PUBLIC_URL, CORS_ORIGINS, GRPC_*, WEB_DIR. */
export function serverSettings(env: Env, cwd: string): ServerSettings {
  const port = int(env, 'PORT', 8080, 0, 65535);
  const host = str(env, 'HOST') ?? '0.0.0.0';
  const dataDir = path.resolve(cwd, str(env, 'DATA_DIR') ?? 'data');
  const logLevel = str(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  const publicUrl = (url(env, 'PUBLIC_URL') ?? `http://localhost:${port}/`).replace(/\/+$/, '');
  return {
    host,
    port,
    publicUrl,
    corsOrigins: origins(env, 'CORS_ORIGINS'),
    dataDir,
    logLevel,
    grpc: grpcConfig(env),
    web: {
      // src/config/ and lib/config/ alike: two levels below the package root.
      dir: path.resolve(
        cwd,
        str(env, 'WEB_DIR') ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '../../dist/web/app'),
      ),
    },
  };
}

function grpcConfig(env: Env): GrpcConfig | undefined {
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
