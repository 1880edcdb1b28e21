import pg from 'pg';
import type { Logger } from 'pino';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** Anything that runs a query: the pool, or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'>;

// bigint columns (bytes) fit comfortably in a JS number for any real file.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export function createPool(connectionString: string, logger: Logger, max = 10): Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
  });
  // An idle client losing its connection (database restart) must not crash the process.
  pool.on('error', (err) => logger.warn({ err }, 'idle database connection lost'));
  return pool;
}

export async function withTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A checked-out client has no pool listener: a connection the server ends between two queries
  // (database restart) would be an unhandled 'error' event that kills the process. Note it, let
  // the next query fail, and discard the client instead of returning it to the pool.
  let broken: Error | undefined;
  const onError = (err: Error) => {
    broken = err;
  };
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    if (!broken) await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.removeListener('error', onError);
    client.release(broken);
  }
}

/**
 * True for Postgres "data exception" errors (SQLSTATE class 22: a value out of range, text with
 * NUL, a malformed date): a value that passed validation but that Postgres cannot take. The
 * request schemas should catch these first; this is the net under them.
 */
export function isDataException(err: unknown): boolean {
  const e = err as { code?: unknown; severity?: unknown };
  return (
    err instanceof Error && typeof e.code === 'string' && /^22[0-9A-Z]{3}$/.test(e.code) && 'severity' in e
  );
}

/** True for errors that mean "the database is not reachable right now" (retry later), not bad input. */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'].includes(code)) return true;
    // 08xxx connection exceptions, 57P01-57P03 admin shutdown / cannot connect now, 53300 too many connections.
    if (/^08/.test(code) || /^57P0[1-3]$/.test(code) || code === '53300') return true;
  }
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
    err.message,
  );
}
