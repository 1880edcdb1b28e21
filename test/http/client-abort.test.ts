import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loggedApp } from '../helpers/logged-app.ts';

// Found by the fault suite's fuzzing: a client hanging up in the middle of a request body made Node
// raise "aborted" with code ECONNRESET, which the error handler took for a lost database connection:
// logged as an error and rendered as 503 service_unavailable.
test('a client that hangs up mid-body is a 4xx upload_aborted warning, not a 503 database error', async () => {
  const { app, lines } = loggedApp<{ level: number; msg: string; code?: string }>();
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
