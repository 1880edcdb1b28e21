/**
 * Administrators: the users named in ADMIN_USER_IDS (their JWT `sub`). Mediary has no roles of
 * its own; an operator names who administers it. Today an administrator may read the whole audit
 * log (`GET /admin/audit`); nothing else is granted. Device keys are never administrators.
 */
import type { Principal } from './principals.ts';

export function isAdmin(p: Principal | null, adminUserIds: readonly string[]): boolean {
  return p !== null && p.kind === 'user' && adminUserIds.includes(p.userId);
}
