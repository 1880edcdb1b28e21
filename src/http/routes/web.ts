/**
 * The web app, served by `mediary serve` itself at `/` (no second server): `index.html`
 * (`no-cache`: it names the current assets) and `/assets/*` (content-hashed names: cached for a
 * year, `immutable`). The app's CSP replaces the API's `default-src 'none'; sandbox`: scripts and
 * styles from this origin only, no inline script, and images, video and requests only to this
 * origin, PUBLIC_URL and the object store that serves the signed URLs.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import type { Config } from '../../config.ts';
import { AppError } from '../../errors.ts';
import { bytesResponse, errors, PUBLIC } from '../schemas.ts';

export interface WebRouteDeps {
  config: Config;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
};
/** esbuild's `[name]-[hash]` names: the bytes behind them never change. */
const HASHED = /-[A-Z0-9]{8}\.(?:js|css|map)$/;
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

const originOf = (url: string | undefined) => {
  try {
    return url ? new URL(url).origin : undefined;
  } catch {
    return undefined;
  }
};

/** Origins (besides this one) the app loads media from and sends uploads to. */
export function storeOrigins(config: Config): string[] {
  const origins = new Set<string>();
  const pub = originOf(config.publicUrl);
  if (pub) origins.add(pub);
  if (config.storage.backend === 's3') {
    const endpoint = originOf(config.s3?.endpoint);
    if (endpoint) {
      origins.add(endpoint);
      // Virtual-hosted addressing puts the bucket in the host name.
      if (!config.s3?.forcePathStyle) origins.add(endpoint.replace('://', `://*.`));
    } else origins.add('https://*.amazonaws.com');
  }
  if (config.storage.backend === 'gcs') {
    origins.add(originOf(config.gcs?.apiEndpoint) ?? 'https://storage.googleapis.com');
  }
  return [...origins];
}

export function appCsp(config: Config): string {
  const media = ["'self'", ...storeOrigins(config)].join(' ');
  return [
    "default-src 'none'",
    // The SDK hashes files in WebAssembly: compiling it is allowed, JavaScript eval is not.
    "script-src 'self' 'wasm-unsafe-eval'",
    "style-src 'self'",
    `img-src ${media} data: blob:`,
    `media-src ${media} blob:`,
    `connect-src ${media}`,
    "manifest-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

export const webRoutes: FastifyPluginAsyncTypebox<WebRouteDeps> = async (app, { config }) => {
  const csp = appCsp(config);
  const root = config.web.dir;
  // After the global hook that sets the API's CSP: the app's replaces it on these routes.
  app.addHook('onSend', async (_request, reply) => {
    void reply.header('content-security-policy', csp);
  });

  const send = async (file: string, cacheControl: string, reply: FastifyReply) => {
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) {
      throw new AppError(
        'not_found',
        file.endsWith('index.html')
          ? 'The web app is not built: run `npm run build:client`.'
          : 'No such asset.',
      );
    }
    return reply
      .header('content-type', TYPES[path.extname(file)] ?? 'application/octet-stream')
      .header('content-length', info.size)
      .header('cache-control', cacheControl)
      .send(createReadStream(file));
  };

  app.get(
    '/',
    {
      schema: {
        summary: 'The web app',
        tags: ['web'],
        operationId: 'getWebApp',
        security: PUBLIC,
        response: { 200: bytesResponse('The web app’s page.', 'text/html'), ...errors(404) },
      },
    },
    async (_request, reply) => send(path.join(root, 'index.html'), 'no-cache', reply),
  );
  app.get(
    '/assets/:name',
    {
      schema: {
        summary: 'A file of the web app (hashed names are immutable)',
        tags: ['web'],
        operationId: 'getWebAsset',
        security: PUBLIC,
        params: Type.Object({ name: Type.String({ pattern: ASSET_NAME.source }) }),
        response: {
          200: bytesResponse('The file.', 'text/javascript', 'text/css', 'application/json', 'image/svg+xml'),
          ...errors(400, 404),
        },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      const cache = HASHED.test(name) ? 'public, max-age=31536000, immutable' : 'no-cache';
      return send(path.join(root, 'assets', name), cache, reply);
    },
  );
};
