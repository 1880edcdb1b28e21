import { statement } from './named.ts';
import type { Queryable } from './pool.ts';

/** One counted request: the count in the key's current window and the milliseconds left in it. */
export interface WindowHit {
  count: number;
  ttl: number;
}

/**
 * Fixed-window counters in Postgres (`rate_limit_windows`, migration 0020), so every API process
 * sharing the database spends one budget per key. One statement per hit: an upsert that starts a
 * new window when the key's has ended. The database clock decides windows, so processes on hosts
 * whose clocks differ still agree.
 */
export class PgRateWindows {
  /** `prepared`: run the two hot statements as named prepared statements (DATABASE_PREPARED_STATEMENTS). */
  constructor(
    private readonly db: Queryable,
    private readonly prepared = true,
  ) {}

  private statement(name: string, text: string, values: unknown[]) {
    return statement(text, values, this.prepared, name);
  }

  async hit(name: string, windowMs: number): Promise<WindowHit> {
    const { rows } = await this.db.query<{ count: number; ttl: number }>(
      this.statement(
        'rate-window-hit',
        `INSERT INTO rate_limit_windows AS w (name, count, expires_at)
             VALUES ($1, 1, clock_timestamp() + $2 * interval '1 millisecond')
             ON CONFLICT (name) DO UPDATE SET
               count = CASE WHEN w.expires_at <= clock_timestamp() THEN 1 ELSE w.count + 1 END,
               expires_at = CASE WHEN w.expires_at <= clock_timestamp() THEN EXCLUDED.expires_at ELSE w.expires_at END
             RETURNING count,
               greatest(0, ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000))::int AS ttl`,
        [name, windowMs],
      ),
    );
    return rows[0]!;
  }

  /** Gives back one request counted under `name` in its current window (none if it has ended). */
  async refund(name: string): Promise<void> {
    await this.db.query(
      this.statement(
        'rate-window-refund',
        `UPDATE rate_limit_windows SET count = count - 1
         WHERE name = $1 AND count > 0 AND expires_at > clock_timestamp()`,
        [name],
      ),
    );
  }

  /** The count under `name` in its current window, without counting (tests, diagnostics). */
  async count(name: string): Promise<number> {
    const { rows } = await this.db.query<{ count: number }>(
      'SELECT count FROM rate_limit_windows WHERE name = $1 AND expires_at > clock_timestamp()',
      [name],
    );
    return rows[0]?.count ?? 0;
  }

  /** Deletes windows that ended (any process may; a deleted key simply starts a new window). */
  async deleteExpired(): Promise<number> {
    const r = await this.db.query('DELETE FROM rate_limit_windows WHERE expires_at <= clock_timestamp()');
    return r.rowCount ?? 0;
  }
}
