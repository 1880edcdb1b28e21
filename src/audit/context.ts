/**
 * Who acts and from where, for the audit log (migration 0027).
 *
 * The HTTP layer runs every handler inside {@link withOrigin} (client IP, user agent, request id),
 * so use cases need no extra parameter: {@link setAuditContext} reads the origin of the request
 * being served and stores it, with the actor, as the transaction-local setting
 * `mediary.audit_context`, which the database's audit triggers read. It must run inside the
 * transaction that makes the change (a setting made with `is_local` ends with the transaction).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import os from 'node:os';
import type { Principal } from '../auth/principals.ts';
import type { Queryable } from '../db/pool.ts';

export interface RequestOrigin {
  ip: string | undefined;
  userAgent: string | undefined;
  requestId: string | undefined;
}

/** Who did it: a principal of the API, or the operator's CLI / a background job / another service. */
export type AuditActor =
  Principal | { kind: 'cli'; id: string } | { kind: 'system'; id: string } | { kind: 'service'; id: string };

const origins = new AsyncLocalStorage<RequestOrigin>();

/** Runs `fn` (and everything it starts) as serving a request from `origin`. */
export function withOrigin<T>(origin: RequestOrigin, fn: () => T): T {
  return origins.run(origin, fn);
}

/** The origin of the request being served, if any. */
export function currentOrigin(): RequestOrigin | undefined {
  return origins.getStore();
}

/** A user agent is the client's text: bounded, so a huge header cannot bloat the log. */
export const boundUserAgent = (ua: string | undefined) => (ua === undefined ? undefined : ua.slice(0, 512));

export function actorOf(actor: AuditActor): { kind: string; id: string } {
  switch (actor.kind) {
    case 'user':
      return { kind: 'user', id: actor.userId };
    case 'device':
      return { kind: 'device', id: actor.deviceId };
    case 'cli':
    case 'system':
    case 'service':
      return { kind: actor.kind, id: actor.id };
  }
}

/**
 * Names the actor (and the current request's origin) of the transaction `tx` for the audit
 * triggers. Call it first thing in the transaction of a recorded change.
 */
export async function setAuditContext(tx: Queryable, actor: AuditActor): Promise<void> {
  const origin = currentOrigin();
  const { kind, id } = actorOf(actor);
  const context = {
    kind,
    id,
    ip: origin?.ip,
    ua: boundUserAgent(origin?.userAgent),
    rid: origin?.requestId,
  };
  await tx.query(`SELECT set_config('mediary.audit_context', $1, true)`, [JSON.stringify(context)]);
}

/** The operator running a `mediary` admin command: their login and host. */
export function cliActor(): AuditActor {
  let user = 'unknown';
  try {
    user = os.userInfo().username;
  } catch {
    // No passwd entry for this uid (a container): keep "unknown".
  }
  return { kind: 'cli', id: `${user}@${os.hostname()}` };
}
