import { Writable } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import pino from 'pino';
import { registerErrorHandling } from '../../src/http/errors.ts';

/** A bare Fastify app with our one error handler, logging (at `warn` and up) into `lines`. */
export function loggedApp<L extends { level: number }>(): { app: FastifyInstance; lines: L[] } {
  const lines: L[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as L);
      done();
    },
  });
  const app = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- as in src/http/server.ts
    loggerInstance: pino({ level: 'warn' }, sink) as FastifyBaseLogger,
  });
  registerErrorHandling(app);
  return { app, lines };
}
