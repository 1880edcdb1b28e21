import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { buildHttpServer, type HttpDeps } from './server.ts';

/**
 * The OpenAPI document, generated from the route schemas. Building the routes needs no live
 * dependencies: handlers are registered, never called.
 */
export async function openApiDocument(config: Config, logger: Logger): Promise<unknown> {
  const unused = null as never;
  const deps: HttpDeps = {
    config,
    logger,
    db: unused,
    authenticator: unused,
    media: unused,
    processing: unused,
    playback: unused,
    posts: unused,
    profiles: unused,
    circles: unused,
    devices: unused,
    multipart: unused,
    tus: unused,
    store: unused,
    urls: unused,
    events: unused,
    webhooks: unused,
    audit: { queries: unused, writer: unused },
    rateWindows: unused,
  };
  const app = await buildHttpServer(deps);
  await app.ready();
  const doc = app.swagger();
  await app.close();
  return doc;
}
