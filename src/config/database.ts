import path from 'node:path';
import { ConfigError, bool, int, str, type Env } from './env.ts';

/** Postgres: an external server (DATABASE_URL) or the embedded one under DATA_DIR, and its pool. */
export interface DatabaseSettings {
  database: { kind: 'external'; url: string } | { kind: 'embedded'; dir: string; port: number };
  /**
   * Hot statements (creating an upload session) run as named prepared statements: Postgres parses
   * and plans them once per connection. Off for poolers that cannot keep them (PgBouncer before
   * 1.21 in transaction mode).
   */
  databasePreparedStatements: boolean;
  databaseTimeouts: DatabaseTimeouts;
  /** Connections of the request pool of each `serve` process (DATABASE_POOL_SIZE). */
  databasePoolSize: number;
}

/**
 * Bounds on waiting for the database, so a hung or overloaded Postgres answers 503 within seconds
 * instead of holding requests (0 = no bound). Migrations run on their own connection without them.
 */
export interface DatabaseTimeouts {
  /** Opening a connection (TCP + start-up + authentication) or waiting for a free pooled one. */
  connectMs: number;
  /**
   * Server side `statement_timeout`; the client also stops waiting this long + 1 s later (a
   * server too hung to cancel anything), drops the connection and answers 503.
   */
  statementMs: number;
  /** Server side `idle_in_transaction_session_timeout`: a transaction left open by a stuck process. */
  idleInTransactionMs: number;
}

/** DATABASE_*, EMBEDDED_PG_PORT; the embedded cluster lives in `dataDir`/postgres. */
export function databaseSettings(env: Env, dataDir: string): DatabaseSettings {
  const databaseUrl = str(env, 'DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ConfigError('DATABASE_URL', 'must start with postgres:// or postgresql://');
  }
  const database: DatabaseSettings['database'] = databaseUrl
    ? { kind: 'external', url: databaseUrl }
    : {
        kind: 'embedded',
        dir: path.join(dataDir, 'postgres'),
        port: int(env, 'EMBEDDED_PG_PORT', 54329, 1024, 65535),
      };
  return {
    database,
    databasePreparedStatements: bool(env, 'DATABASE_PREPARED_STATEMENTS', true),
    databasePoolSize: int(env, 'DATABASE_POOL_SIZE', 20, 1, 1000),
    databaseTimeouts: {
      connectMs: int(env, 'DATABASE_CONNECT_TIMEOUT_MS', 3000, 0, 600_000),
      statementMs: int(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 5000, 0, 3_600_000),
      idleInTransactionMs: int(env, 'DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS', 60_000, 0, 3_600_000),
    },
  };
}
