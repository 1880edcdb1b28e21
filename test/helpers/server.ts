/**
 * Test harness: a real Mediary server (real Postgres, real filesystem) on free ports, in a fresh
 * temporary data directory, plus helpers to make principals and requests. Under scripts/test.mjs
 * each server gets a fresh database cloned from the run's migrated template (test-postgres.ts);
 * a file run on its own starts an embedded Postgres per server instead.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startServer, type Server } from '../../src/app.ts';
import { createDevice, mintUserToken } from '../../src/auth/principals.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger, type Logger } from '../../src/log.ts';
import { createTestDatabase } from './test-postgres.ts';

export const JWT_SECRET = 'test-secret-test-secret-test-secret-0123456789';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface TestServer {
  server: Server;
  config: Config;
  /** The environment the server was configured from (to run `mediary` commands beside it). */
  env: Record<string, string>;
  dataDir: string;
  /** The server's database (the run's clone of the template, or its embedded Postgres). */
  databaseUrl: string;
  /** http://127.0.0.1:PORT */
  base: string;
  api(pathname: string): string;
  device(
    name?: string,
    ownerUserId?: string,
  ): Promise<{ id: string; key: string; auth: Record<string, string> }>;
  user(userId: string): Promise<{ id: string; token: string; auth: Record<string, string> }>;
  close(): Promise<void>;
}

export async function tempDir(prefix = 'mediary-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

/** Environment for a server in `dataDir` on fresh ports (also used to spawn `mediary serve`). */
export async function testEnv(
  dataDir: string,
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  const port = await freePort();
  return {
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: String(port),
    PUBLIC_URL: `http://127.0.0.1:${port}`,
    EMBEDDED_PG_PORT: String(await freePort()),
    JWT_SECRET,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    // The test's database is never hung, but a loaded machine can block this event loop (two servers
    // compiling their schemas at once) past the 3 s default; pg-pool's timer then fires before the
    // finished connection is seen. Tests of a hung database set their own bound.
    DATABASE_CONNECT_TIMEOUT_MS: '20000',
    // Admission control (on by default) refuses sessions once the image lane's backlog is older than
    // its bound, which on a loaded test machine depends on the machine's speed, not on the code:
    // off here; test/processing/admission.test.ts and the load fault test run it.
    ADMISSION_MAX_BACKLOG_SECONDS: '0',
    ...extra,
  };
}

export async function startTestServer(
  extraEnv: Record<string, string> = {},
  /** Instead of a logger at LOG_LEVEL on stderr (a test that reads the log lines). */
  opts: { logger?: Logger } = {},
): Promise<TestServer> {
  const dataDir = await tempDir();
  const cloned = extraEnv.DATABASE_URL === undefined ? await createTestDatabase() : undefined;
  const env = await testEnv(dataDir, cloned ? { DATABASE_URL: cloned, ...extraEnv } : extraEnv);
  const config = loadConfig(env);
  const logger = opts.logger ?? createLogger(config.logLevel, 2);
  const server = await startServer(config, logger);
  const base = config.publicUrl;
  const databaseUrl =
    server.database.embedded?.url ?? (config.database.kind === 'external' ? config.database.url : '');
  return {
    server,
    config,
    env,
    dataDir,
    databaseUrl,
    base,
    api: (p) => `${base}/api/v1${p}`,
    async device(name = 'cam', ownerUserId) {
      const { device, apiKey } = await createDevice(server.database.pool, { name, ownerUserId });
      return { id: device.id, key: apiKey, auth: { authorization: `Bearer ${apiKey}` } };
    },
    async user(userId) {
      const token = await mintUserToken(JWT_SECRET, userId);
      return { id: userId, token, auth: { authorization: `Bearer ${token}` } };
    },
    async close() {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** fetch + JSON body, for terse tests. */
function resetSocket(err: unknown): boolean {
  const cause = (err as { cause?: { code?: string } } | undefined)?.cause;
  return cause?.code === 'ECONNRESET' || cause?.code === 'UND_ERR_SOCKET';
}

export async function call(
  url: string,
  init: {
    method?: string;
    headers?: Record<string, string>;
    json?: unknown;
    body?: BodyInit | Uint8Array;
    redirect?: RequestRedirect;
  } = {},
): Promise<{ status: number; headers: Headers; body: any; text: string }> {
  const headers: Record<string, string> = { ...init.headers };
  let body = init.body as BodyInit | undefined;
  if (init.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(init.json);
  }
  const method = init.method ?? 'GET';
  const send = () => fetch(url, { method, headers, body, redirect: init.redirect ?? 'manual' });
  // A reads-only request met a reset socket (a reused keep-alive connection, seen only under heavy
  // load): sent once more, as browsers do. Any HTTP answer is returned as it is.
  const res = await send().catch((err: unknown) => {
    if ((method === 'GET' || method === 'HEAD') && resetSocket(err)) return send();
    throw err;
  });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}
