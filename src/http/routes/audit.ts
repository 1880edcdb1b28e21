import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { withOrigin } from '../../audit/context.ts';
import type { AuditRow } from '../../audit/repo.ts';
import type { AuditQueries } from '../../audit/service.ts';
import { AuditPage, AuditQuery, DEFAULT_AUDIT_PAGE_SIZE } from '../../contract/index.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import { errors } from '../schemas.ts';

export interface AuditRouteDeps {
  audit: AuditQueries;
  auth: ReturnType<typeof registerAuth>;
}

/**
 * Every handler runs with its request's origin (client IP, user agent, request id) in scope, so
 * the audit log knows where an action came from without each use case taking it as a parameter
 * (src/audit/context.ts). A preHandler: it runs after the body is read, so the handler's whole
 * async chain stays inside the scope.
 */
export function registerAuditOrigin(app: FastifyInstance): void {
  app.addHook('preHandler', (request, _reply, done) => {
    withOrigin(
      { ip: request.ip, userAgent: request.headers['user-agent'], requestId: String(request.id) },
      done,
    );
  });
}

const toEntry = (r: AuditRow) => ({
  id: r.id,
  at: r.at.toISOString(),
  action: r.action,
  actor: { kind: r.actor_kind, id: r.actor_id },
  resource: { type: r.resource_type, id: r.resource_id },
  ip: r.ip,
  userAgent: r.user_agent,
  requestId: r.request_id,
  details: r.details,
});

export const auditRoutes: FastifyPluginAsyncTypebox<AuditRouteDeps> = async (app, { audit, auth }) => {
  for (const [url, scope, operationId, summary] of [
    [
      '/audit',
      'own',
      'listAuditLog',
      'The audit log of your resources (media you own, your devices, shares, circles)',
    ],
    ['/admin/audit', 'all', 'listAuditLogAdmin', 'The whole audit log (administrators: ADMIN_USER_IDS)'],
  ] as const) {
    app.get(
      url,
      {
        onRequest: auth.required,
        schema: {
          summary,
          tags: ['audit'],
          operationId,
          querystring: AuditQuery,
          response: { 200: AuditPage, ...errors(400, 401, 403) },
        },
      },
      async (request, reply) => {
        const page = await audit.list(principalOf(request), scope, {
          ...request.query,
          limit: request.query.limit ?? DEFAULT_AUDIT_PAGE_SIZE,
        });
        void reply.header('cache-control', 'no-store');
        return { items: page.items.map(toEntry), nextCursor: page.nextCursor };
      },
    );
  }
};
