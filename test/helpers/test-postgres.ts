/**
 * One PostgreSQL per test run, and a fresh database per test server cloned from a migrated template.
 *
 * `scripts/test.mjs` starts the database once (startTemplatePostgres) and hands its admin URL and
 * the template's name to the test processes (TEMPLATE_ENV). startTestServer() then asks for a
 * database (createTestDatabase): `CREATE DATABASE … TEMPLATE` takes a fraction of a second, where
 * initdb + start + migrations took several seconds per file. Without the run's database (a test
 * file started by hand with `node --test`), createTestDatabase() answers undefined and the server
 * starts its own embedded Postgres as before.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { startEmbedded } from '../../src/db/embedded.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPool } from '../../src/db/pool.ts';
import { createLogger } from '../../src/log.ts';
import { PgBossQueue } from '../../src/infra/queue/pg-boss.ts';
import { freePort } from './server.ts';

/** The environment variables the runner passes to the test processes. */
export const TEMPLATE_ENV = {
  url: 'MEDIARY_TEST_PG_ADMIN_URL',
  template: 'MEDIARY_TEST_PG_TEMPLATE',
} as const;
const TEMPLATE = 'mediary_template';

export interface TemplatePostgres {
  /** TEMPLATE_ENV's variables, for the test processes. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/** Starts the run's PostgreSQL in `dir` and builds the migrated template database. */
export async function startTemplatePostgres(dir: string): Promise<TemplatePostgres> {
  const logger = createLogger('silent');
  const db = await startEmbedded({ dir: path.join(dir, 'postgres'), port: await freePort(), logger });
  try {
    const admin = new URL(db.url);
    admin.pathname = '/postgres';
    const client = new pg.Client({ connectionString: admin.toString() });
    await client.connect();
    try {
      // Throw-away data: durability buys nothing here and costs every commit a flush.
      for (const setting of ['fsync', 'synchronous_commit', 'full_page_writes']) {
        await client.query(`ALTER SYSTEM SET ${setting} = off`);
      }
      await client.query('SELECT pg_reload_conf()');
      await client.query(`CREATE DATABASE ${TEMPLATE}`);
    } finally {
      await client.end();
    }
    const tpl = new URL(db.url);
    tpl.pathname = `/${TEMPLATE}`;
    await migrateWithQueue(tpl.toString());
    const c2 = new pg.Client({ connectionString: admin.toString() });
    await c2.connect();
    try {
      // Nobody may connect to the template: CREATE DATABASE … TEMPLATE refuses while anyone is.
      await c2.query(`ALTER DATABASE ${TEMPLATE} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`);
    } finally {
      await c2.end();
    }
    return {
      env: { [TEMPLATE_ENV.url]: admin.toString(), [TEMPLATE_ENV.template]: TEMPLATE },
      stop: () => db.stop(),
    };
  } catch (err) {
    await db.stop();
    throw err;
  }
}

/** Our migrations and pg-boss's schema (each server applies its own queue policy when it starts). */
export async function migrateWithQueue(url: string): Promise<void> {
  const logger = createLogger('silent');
  const pool = createPool(url, logger, 2);
  try {
    await migrate(pool, logger);
    const queue = await PgBossQueue.start(pool, logger, { retryLimit: 0, retryDelaySeconds: 1 });
    await queue.stop();
  } finally {
    await pool.end();
  }
}

/**
 * A new database cloned from the run's template, or undefined when this process runs outside
 * scripts/test.mjs (then the caller starts an embedded Postgres).
 */
export async function createTestDatabase(): Promise<string | undefined> {
  const adminUrl = process.env[TEMPLATE_ENV.url];
  const template = process.env[TEMPLATE_ENV.template];
  if (!adminUrl || !template) return undefined;
  countSetup('database');
  const name = `test_${randomBytes(6).toString('hex')}`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * A migrated database for a test file that uses one directly (not through a test server): a clone
 * of the run's template, or, for a file started by hand, an embedded Postgres of its own under
 * `dir`, migrated. `stop` ends that embedded one (a clone needs nothing).
 */
export async function testDatabase(dir: string): Promise<{ url: string; stop(): Promise<void> }> {
  const url = await createTestDatabase();
  if (url !== undefined) return { url, stop: () => Promise.resolve() };
  const logger = createLogger('silent');
  const db = await startEmbedded({ dir: path.join(dir, 'postgres'), port: await freePort(), logger });
  await migrateWithQueue(db.url);
  return { url: db.url, stop: () => db.stop() };
}

/**
 * Counts the run's per-file setups (`database` clones, `bucket` users of the shared Ceph) in the
 * file named by MEDIARY_TEST_SETUP_LOG, when set: `npm run bench:test-setup` multiplies its measured
 * per-setup costs by these counts to compare the suite's two layouts.
 */
export function countSetup(kind: 'database' | 'ceph'): void {
  const log = process.env.MEDIARY_TEST_SETUP_LOG;
  if (log) appendFileSync(log, `${kind}\n`);
}
