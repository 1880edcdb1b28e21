/** SQL of the audit log (migration 0027): the filtered, keyset-paginated read, and the purge. */
import type { Queryable } from '../db/pool.ts';

export interface AuditRow {
  id: number;
  at: Date;
  action: string;
  actor_kind: string;
  actor_id: string | null;
  resource_type: string;
  resource_id: string;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  details: Record<string, unknown>;
}

export interface AuditFilter {
  /** Only rows naming this user among the resource's owners; undefined: every row (admin). */
  ownerUserId?: string | undefined;
  action?: string | undefined;
  resourceId?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  /** Rows with a smaller id than this (the previous page's last). */
  beforeId?: number | undefined;
  limit: number;
}

/** Newest first (by id: the order rows were written in). */
export async function listAudit(db: Queryable, f: AuditFilter): Promise<AuditRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  const add = (sql: (p: string) => string, value: unknown) => {
    params.push(value);
    where.push(sql(`$${params.length}`));
  };
  if (f.ownerUserId !== undefined) add((p) => `owners @> ARRAY[${p}::text]`, f.ownerUserId);
  if (f.action !== undefined) add((p) => `action = ${p}`, f.action);
  if (f.resourceId !== undefined) add((p) => `resource_id = ${p}`, f.resourceId);
  if (f.since !== undefined) add((p) => `at >= ${p}`, f.since);
  if (f.until !== undefined) add((p) => `at < ${p}`, f.until);
  if (f.beforeId !== undefined) add((p) => `id < ${p}`, f.beforeId);
  params.push(f.limit);
  const { rows } = await db.query<AuditRow>(
    `SELECT id, at, action, actor_kind, actor_id, resource_type, resource_id, ip, user_agent, request_id, details
       FROM audit_log ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY id DESC LIMIT $${params.length}`,
    params,
  );
  return rows;
}

/** Deletes up to `maxRows` rows older than `retentionDays` (the only DELETE the table allows). */
export async function purgeAudit(db: Queryable, retentionDays: number, maxRows: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT audit_purge(now() - make_interval(days => $1), $2) AS n`,
    [retentionDays, maxRows],
  );
  return rows[0]!.n;
}

/** Records an operator's command (the CLI): one row, written at once. */
export async function insertAdminAction(
  db: Queryable,
  entry: { action: string; actorId: string; resourceType: string; resourceId: string; details: object },
): Promise<void> {
  await db.query(
    `INSERT INTO audit_log (action, actor_kind, actor_id, resource_type, resource_id, details)
     VALUES ($1, 'cli', $2, $3, $4, $5)`,
    [entry.action, entry.actorId, entry.resourceType, entry.resourceId, JSON.stringify(entry.details)],
  );
}
