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

// Two transactions that lock the same rows in opposite orders: Postgres aborts one (40P01). Nothing
// was changed by it and sending it again succeeds: the client's 503 + Retry-After, never a 500.
test('a transaction Postgres aborts as a deadlock is a 503 with Retry-After, not a 500', async () => {
  const { app, lines } = loggedApp<{ level: number; pgCode?: string }>();
  const pool = t.server.database.pool;
  await pool.query('CREATE TABLE deadlock_probe (id int PRIMARY KEY, v int NOT NULL DEFAULT 0)');
  await pool.query('INSERT INTO deadlock_probe (id) VALUES (1), (2)');
  let arrived = 0;
  let bothHoldOne!: () => void;
  const barrier = new Promise<void>((r) => (bothHoldOne = r));
  app.get<{ Params: { first: string } }>('/lock/:first', async (request) => {
    const first = Number(request.params.first);
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('UPDATE deadlock_probe SET v = v + 1 WHERE id = $1', [first]);
      if (++arrived === 2) bothHoldOne();
      await barrier;
      await c.query('UPDATE deadlock_probe SET v = v + 1 WHERE id = $1', [3 - first]);
      await c.query('COMMIT');
      return { ok: true };
    } catch (err) {
      await c.query('ROLLBACK');
      throw err;
    } finally {
      c.release();
    }
  });
  try {
    const answers = await Promise.all([
      app.inject({ method: 'GET', url: '/lock/1' }),
      app.inject({ method: 'GET', url: '/lock/2' }),
    ]);
    assert.deepEqual(answers.map((a) => a.statusCode).sort(), [200, 503], answers.map((a) => a.body).join());
    const refused = answers.find((a) => a.statusCode === 503)!;
    assert.equal(refused.headers['retry-after'], '1');
    assert.equal(refused.json<{ error: { code: string } }>().error.code, 'service_unavailable');
    assert.ok(
      lines.some((l) => l.pgCode === '40P01'),
      'logged with its SQLSTATE',
    );
    const { rows } = await pool.query<{ v: number }>('SELECT sum(v)::int AS v FROM deadlock_probe');
    assert.equal(rows[0]!.v, 2, 'only the transaction that committed changed anything');
  } finally {
    await app.close();
    await pool.query('DROP TABLE deadlock_probe');
  }
});
