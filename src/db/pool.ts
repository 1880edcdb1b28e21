import pg from 'pg';
import type { Logger } from 'pino';
import { nameStatementsOf } from './named.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
/** Anything that runs a query: the pool, or a client inside a transaction. */
export type Queryable = Pick<pg.Pool, 'query'>;

// bigint columns (bytes) fit comfortably in a JS number for any real file.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export interface PoolTimeouts {
  connectMs: number;
  statementMs: number;
  idleInTransactionMs: number;
}

/** How much longer than `statement_timeout` the client waits before it gives up on the server. */
const CLIENT_GRACE_MS = 1000;

/**
 * `timeouts` bound every wait on the database (see Config.databaseTimeouts); without them (the
 * migration connection) statements may run as long as they need. `namedStatements`: every
 * statement with parameters becomes a named prepared statement (./named.ts), for a pool whose
 * users send a fixed set of SQL texts (the worker's).
 */
export function createPool(
  connectionString: string,
  logger: Logger,
  max = 10,
  timeouts?: PoolTimeouts,
  { namedStatements = false }: { namedStatements?: boolean } = {},
): Pool {
  const pool = new pg.Pool({
    connectionString,
    max,
    connectionTimeoutMillis: timeouts?.connectMs ?? 5000,
    idleTimeoutMillis: 30_000,
    // Sent as start-up parameters (behind PgBouncer: list them in ignore_startup_parameters, or set
    // the variables to 0). The server cancels a statement that runs too long (57014, a 503) and
    // ends a session idle in a transaction; the client-side read timeout catches a server too hung
    // to do either.
    ...(timeouts?.statementMs
      ? { statement_timeout: timeouts.statementMs, query_timeout: timeouts.statementMs + CLIENT_GRACE_MS }
      : {}),
    ...(timeouts?.idleInTransactionMs
      ? { idle_in_transaction_session_timeout: timeouts.idleInTransactionMs }
      : {}),
  });
  if (namedStatements) pool.on('connect', (client) => nameStatementsOf(client));
  // An idle client losing its connection (database restart) must not crash the process.
  pool.on('error', (err) => logger.warn({ err }, 'idle database connection lost'));
  return pool;
}

/** pg's client-side read timeout: the statement may still be running, so the connection is unusable. */
export function isQueryTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === 'Query read timeout';
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
    // After a client-side timeout the connection still waits for the hung statement: drop it (the
    // server rolls the transaction back when the connection ends) instead of queueing a ROLLBACK.
    if (!broken && isQueryTimeout(err)) broken = err as Error;
    if (!broken) {
      await client.query('ROLLBACK').catch((rollbackErr: unknown) => {
        broken = rollbackErr instanceof Error ? rollbackErr : new Error('ROLLBACK failed');
      });
    }
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

/**
 * True for a transaction Postgres aborted because it collided with another one at the same moment
 * (40P01 deadlock_detected, 40001 serialization_failure): nothing was changed, and the same
 * request sent again succeeds. The client's to retry, never a 500.
 */
export function isTransactionConflict(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && 'severity' in err && (code === '40P01' || code === '40001');
}

/** True for errors that mean "the database is not reachable right now" (retry later), not bad input. */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'].includes(code)) return true;
    // 08xxx connection exceptions, 57P01-57P03 admin shutdown / cannot connect now, 53300 too many
    // connections, 57014 a statement cancelled (statement_timeout: the database is overloaded or
    // stuck on a lock), 25P03 a session ended by idle_in_transaction_session_timeout.
    if (/^08/.test(code) || /^57P0[1-3]$/.test(code) || ['53300', '57014', '25P03'].includes(code))
      return true;
  }
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Query read timeout/i.test(
    err.message,
  );
}
