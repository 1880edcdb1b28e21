/**
 * Reading the audit log: a user reads the rows about their own resources (media they own, their
 * devices, their shares and circles); an administrator (ADMIN_USER_IDS) reads every row. Devices
 * read nothing (403). Newest first, keyset-paginated by row id.
 */
import { isAdmin } from '../auth/admin.ts';
import type { Principal } from '../auth/principals.ts';
import type { Queryable } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { listAudit, type AuditRow } from './repo.ts';

export interface AuditListQuery {
  limit: number;
  cursor?: string | undefined;
  action?: string | undefined;
  resourceId?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
}

const CURSOR_PREFIX = 'audit:';
const encodeCursor = (id: number) => Buffer.from(`${CURSOR_PREFIX}${id}`).toString('base64url');

function decodeCursor(cursor: string): number {
  const text = Buffer.from(cursor, 'base64url').toString();
  const id = Number(text.slice(CURSOR_PREFIX.length));
  if (!text.startsWith(CURSOR_PREFIX) || !Number.isSafeInteger(id) || id < 1) {
    throw new AppError('invalid_cursor');
  }
  return id;
}

export class AuditQueries {
  constructor(
    private readonly db: Queryable,
    private readonly adminUserIds: readonly string[],
  ) {}

  /** `own`: the caller's resources (users only); `all`: every row (administrators only). */
  async list(
    principal: Principal,
    scope: 'own' | 'all',
    q: AuditListQuery,
  ): Promise<{ items: AuditRow[]; nextCursor: string | null }> {
    if (principal.kind !== 'user') {
      throw new AppError('forbidden', 'The audit log is read by users; a device key cannot read it.');
    }
    if (scope === 'all' && !isAdmin(principal, this.adminUserIds)) {
      throw new AppError('forbidden', 'Only administrators (ADMIN_USER_IDS) read the whole audit log.');
    }
    const rows = await listAudit(this.db, {
      ownerUserId: scope === 'own' ? principal.userId : undefined,
      action: q.action,
      resourceId: q.resourceId,
      since: q.since !== undefined ? new Date(q.since) : undefined,
      until: q.until !== undefined ? new Date(q.until) : undefined,
      beforeId: q.cursor !== undefined ? decodeCursor(q.cursor) : undefined,
      limit: q.limit + 1,
    });
    const items = rows.slice(0, q.limit);
    return {
      items,
      nextCursor: rows.length > q.limit ? encodeCursor(items.at(-1)!.id) : null,
    };
  }
}
