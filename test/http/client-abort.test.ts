import assert from 'node:assert/strict';
import net from 'node:net';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { registerErrorHandling } from '../../src/http/errors.ts';

// Found by the fault suite's fuzzing: a client hanging up in the middle of a request body made Node
// raise "aborted" with code ECONNRESET, which the error handler took for a lost database connection:
// logged as an error and rendered as 503 service_unavailable.
test('a client that hangs up mid-body is a 4xx upload_aborted warning, not a 503 database error', async () => {
  const lines: { level: number; msg: string; code?: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as (typeof lines)[number]);
      done();
    },
  });
  const app = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- as in src/http/server.ts
    loggerInstance: pino({ level: 'warn' }, sink) as FastifyBaseLogger,
  });
  registerErrorHandling(app);
  app.post('/x', async () => ({ ok: true }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  try {
    const { port } = app.server.address() as net.AddressInfo;
    const sock = net.connect(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write(
      'POST /x HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a":',
    );
    await sleep(100);
    sock.destroy();
    for (let i = 0; i < 100 && !lines.some((l) => l.level >= 40); i++) await sleep(20);
    assert.deepEqual(
      lines.filter((l) => l.level >= 50),
      [],
      'nothing logged as an error',
    );
    assert.ok(lines.some((l) => l.level === 40 && l.code === 'upload_aborted'));
  } finally {
    await app.close();
  }
});
