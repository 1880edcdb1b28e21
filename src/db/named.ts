/**
 * Named prepared statements (DATABASE_PREPARED_STATEMENTS, on by default). node-postgres parses a
 * named statement once per connection and then only binds and executes it; Postgres keeps its plan.
 * An unnamed one is parsed and planned on every call, and for this service's hot statements the
 * planning was most of Postgres's CPU (pg_stat_statements with `track_planning`, 2026-12-03).
 *
 * Only for a fixed set of SQL texts: each distinct text stays prepared on each connection for the
 * connection's life, so a text built from data would prepare without bound. And a statement whose
 * result columns are `*` fails ("cached plan must not change result type") once a migration adds
 * a column under a running server; the hot statements list their columns (`MEDIA_COLUMNS`).
 */
import { createHash } from 'node:crypto';
import type pg from 'pg';

const names = new Map<string, string>();

/** The statement's name: from its text, so every connection and process names it alike. */
export function statementName(text: string): string {
  let name = names.get(text);
  if (name === undefined) {
    name = `s_${createHash('sha256').update(text).digest('base64url').slice(0, 24)}`;
    names.set(text, name);
  }
  return name;
}

/** `text` with `values` as a named statement (a query config for `db.query`). */
export function named(text: string, values: unknown[]): pg.QueryConfig {
  return { name: statementName(text), text, values };
}

/**
 * The query config of a hot statement under DATABASE_PREPARED_STATEMENTS: named when `prepared`
 * (`name` if given, else the text's), unnamed otherwise.
 */
export function statement(text: string, values: unknown[], prepared: boolean, name?: string): pg.QueryConfig {
  return prepared ? { name: name ?? statementName(text), text, values } : { text, values };
}

type QueryFn = (config: unknown, values?: unknown, callback?: unknown) => unknown;

/**
 * From now on, every statement with parameters that `client` sends is a named one (statements
 * without parameters, multi-statement scripts among them, stay as they are). For the connections
 * of a pool whose users all send fixed texts: the worker's own pool (its claims, the media row's
 * transitions, the job queue's statements).
 */
export function nameStatementsOf(client: pg.ClientBase): void {
  const target = client as unknown as { query: QueryFn };
  const query: QueryFn = target.query.bind(client);
  target.query = (config, values, callback) =>
    typeof config === 'string' && Array.isArray(values) && values.length > 0
      ? query({ name: statementName(config), text: config }, values, callback)
      : query(config, values, callback);
}
