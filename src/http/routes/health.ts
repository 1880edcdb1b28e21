import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Queryable } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import { errors, PUBLIC } from '../schemas.ts';

export const healthRoutes: FastifyPluginAsyncTypebox<{ db: Queryable }> = async (app, { db }) => {
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness',
        tags: ['health'],
        operationId: 'liveness',
        security: PUBLIC,
        response: { 200: Type.Object({ status: Type.Literal('ok') }), ...errors() },
      },
    },
    () => ({ status: 'ok' as const }),
  );
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: the database answers',
        tags: ['health'],
        operationId: 'readiness',
        security: PUBLIC,
        response: { 200: Type.Object({ status: Type.Literal('ready') }), ...errors(503) },
      },
    },
    async () => {
      try {
        await db.query('SELECT 1');
      } catch {
        throw new AppError('service_unavailable', 'The database is not reachable.', undefined, {
          'retry-after': '2',
        });
      }
      return { status: 'ready' as const };
    },
  );
};
