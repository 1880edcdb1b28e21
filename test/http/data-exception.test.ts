import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { loggedApp } from '../helpers/logged-app.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t?.close();
});

// The net under the request schemas: a value that passed validation but that Postgres refuses
// (SQLSTATE class 22) is the client's 400, logged with Postgres' code, never a 500.
test('a Postgres data exception is a 400 validation_failed, logged as a warning with its SQLSTATE', async () => {
  const { app, lines } = loggedApp<{ level: number; pgCode?: string }>();
  const pool = t.server.database.pool;
  app.get('/nul', async () => (await pool.query('SELECT $1::text AS v', ['a\u0000b'])).rows);
  app.get('/date', async () => (await pool.query('SELECT $1::timestamptz AS v', ['2020-01-01 junk?'])).rows);
  app.get('/syntax', async () => (await pool.query('SELEC 1')).rows);
  try {
    for (const [path, pgCode] of [
      ['/nul', '22021'],
      ['/date', '22007'],
    ] as const) {
      const res = await app.inject({ method: 'GET', url: path });
      assert.equal(res.statusCode, 400, `${path}: ${res.body}`);
      const body = res.json<{ error: { code: string; message: string } }>();
      assert.equal(body.error.code, 'validation_failed');
      assert.doesNotMatch(
        body.error.message,
        /SQLSTATE|byte sequence|syntax/i,
        'Postgres text stays in the log',
      );
      assert.ok(
        lines.some((l) => l.level === 40 && l.pgCode === pgCode),
        `${path} logged with ${pgCode}`,
      );
    }
    // Not every database error is the client's: a broken statement stays a 500.
    const broken = await app.inject({ method: 'GET', url: '/syntax' });
    assert.equal(broken.statusCode, 500);
  } finally {
    await app.close();
  }
});
