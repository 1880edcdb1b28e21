/**
 * Opening the database a process works on: the configured Postgres, or the embedded one (started
 * by `serve`, or attached to by admin commands), migrated before anything uses it. A database that
 * cannot be reached at start is a StartupError naming it, not a stack trace.
 */
import { StartupError, type Config } from '../config.ts';
import type { Logger } from '../log.ts';
import { attachOrStartEmbedded, startEmbedded, type EmbeddedDatabase } from './embedded.ts';
import { migrate } from './migrate.ts';
import { createPool, type Pool } from './pool.ts';

export interface Database {
  pool: Pool;
  /** Where `pool` connects (for further pools of this process, e.g. the in-process worker's). */
  url: string;
  embedded: EmbeddedDatabase | undefined;
  close(): Promise<void>;
}

/** A database that cannot be reached or refuses the login: a StartupError naming it, not a stack. */
function unreachable(url: string, err: unknown): StartupError | undefined {
  const code = (err as { code?: unknown }).code;
  const why: Record<string, string> = {
    ECONNREFUSED: 'nothing listens there',
    ENOTFOUND: 'the host name does not resolve',
    EAI_AGAIN: 'the host name does not resolve (yet)',
    ETIMEDOUT: 'the connection timed out',
    EHOSTUNREACH: 'the host is unreachable',
    '28P01': 'the password was refused',
    '28000': 'the login was refused',
    '3D000': 'the database does not exist',
  };
  if (typeof code !== 'string' || !(code in why)) return undefined;
  let where = 'DATABASE_URL';
  try {
    const u = new URL(url);
    where = `DATABASE_URL (${u.hostname}:${u.port || 5432}${u.pathname})`;
  } catch {
    // not a URL pg could parse either; name the variable only
  }
  return new StartupError(`cannot use the database at ${where}: ${why[code]} (${code})`);
}

/**
 * `own`: this process runs the embedded database (serve). `attach`: admin commands use the
 * postmaster a running server owns, or start one just for the command.
 */
export async function openDatabase(
  config: Config,
  logger: Logger,
  mode: 'own' | 'attach',
): Promise<Database> {
  let embedded: EmbeddedDatabase | undefined;
  let url: string;
  if (config.database.kind === 'external') {
    url = config.database.url;
  } else {
    const opts = { dir: config.database.dir, port: config.database.port, logger };
    embedded = mode === 'own' ? await startEmbedded(opts) : await attachOrStartEmbedded(opts);
    url = embedded.url;
  }
  const pool = createPool(url, logger, config.databasePoolSize, config.databaseTimeouts);
  // Migrations may legitimately run long (an index on a big table) and wait for another process'
  // migration lock: their own connection, without the request-path timeouts.
  const migrations = createPool(url, logger, 1);
  try {
    await migrate(migrations, logger);
  } catch (err) {
    await pool.end();
    await embedded?.stop();
    throw config.database.kind === 'external' ? (unreachable(url, err) ?? err) : err;
  } finally {
    await migrations.end();
  }
  return {
    pool,
    url,
    embedded,
    async close() {
      await pool.end();
      await embedded?.stop();
    },
  };
}
