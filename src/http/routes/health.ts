import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Queryable } from '../../db/pool.ts';
import { AppError } from '../../errors.ts';
import { Liveness, Readiness } from '../../contract/index.ts';
import { errors, PUBLIC } from '../schemas.ts';

/** /readyz answers 503 when `SELECT 1` takes longer than this. */
const READY_TIMEOUT_MS = 2000;

export const healthRoutes: FastifyPluginAsyncTypebox<{ db: Queryable }> = async (app, { db }) => {
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness',
        tags: ['health'],
        operationId: 'liveness',
        security: PUBLIC,
        response: { 200: Liveness, ...errors() },
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
        response: { 200: Readiness, ...errors(503) },
      },
    },
    async () => {
      // A hung database must fail readiness fast, whatever the pool's own timeouts are.
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          db.query('SELECT 1'),
          new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error('readiness probe timed out')), READY_TIMEOUT_MS);
          }),
        ]);
      } catch {
        throw new AppError('service_unavailable', 'The database is not reachable.', undefined, {
          'retry-after': '2',
        });
      } finally {
        clearTimeout(timer);
      }
      return { status: 'ready' as const };
    },
  );
};
