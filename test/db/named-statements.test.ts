import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { statementName } from '../../src/db/named.ts';
import { createPool, withTransaction, type Pool } from '../../src/db/pool.ts';
import { PgBossQueue } from '../../src/infra/queue/pg-boss.ts';
import { createLogger } from '../../src/log.ts';
import { tempDir } from '../helpers/server.ts';
import { testDatabase } from '../helpers/test-postgres.ts';

const logger = createLogger('silent');
let dir: string;
let database: Awaited<ReturnType<typeof testDatabase>> | undefined;
let url: string;
const pools: Pool[] = [];
let queue: PgBossQueue | undefined;

before(async () => {
  dir = await tempDir('mediary-named-');
  database = await testDatabase(dir);
  url = database.url;
});
after(async () => {
  await queue?.stop();
  for (const p of pools) await p.end();
  await database?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** One connection, so every query (and pg_prepared_statements) sees the same backend. */
function onePool(namedStatements: boolean): Pool {
  const p = createPool(url, logger, 1, undefined, { namedStatements });
  pools.push(p);
  return p;
}

const preparedOf = async (p: Pool) =>
  (await p.query<{ name: string; statement: string }>('SELECT name, statement FROM pg_prepared_statements'))
    .rows;

test('a pool with named statements prepares each parameterized text once, and answers as before', async () => {
  const p = onePool(true);
  const text = 'SELECT $1::int + 1 AS n';
  for (let i = 0; i < 3; i++) assert.equal((await p.query<{ n: number }>(text, [i])).rows[0]!.n, i + 1);
  await withTransaction(p, async (tx) => {
    assert.equal((await tx.query<{ n: number }>(text, [41])).rows[0]!.n, 42);
  });
  // Without parameters (multi-statement scripts among them) nothing is prepared.
  await p.query('SELECT 1; SELECT 2');
  const prepared = await preparedOf(p);
  assert.deepEqual(
    prepared.map((r) => r.name),
    [statementName(text)],
  );
  assert.equal(prepared[0]!.statement, text);
});

test('a pool without them prepares nothing', async () => {
  const p = onePool(false);
  await p.query('SELECT $1::int AS n', [1]);
  assert.deepEqual(await preparedOf(p), []);
});

test('a statement name depends on the text alone', () => {
  assert.equal(statementName('SELECT $1'), statementName('SELECT $1'));
  assert.notEqual(statementName('SELECT $1'), statementName('SELECT $2'));
  assert.match(statementName('SELECT $1'), /^s_[A-Za-z0-9_-]{24}$/);
});

test("the job queue's statements are named ones when asked, in the caller's transaction", async () => {
  const queuePool = createPool(url, logger, 4);
  pools.push(queuePool);
  queue = await PgBossQueue.start(
    queuePool,
    logger,
    { retryLimit: 0, retryDelaySeconds: 1 },
    { prepared: true },
  );
  const p = onePool(false);
  // A media row is not needed: the queue's insert only carries the id.
  await withTransaction(p, (tx) => queue!.enqueueProcessing(tx, randomUUID(), 'image'));
  const job = await withTransaction(p, (tx) => queue!.fetchProcessing(tx, ['image']));
  assert.ok(job, 'the job queued above is fetched');
  await withTransaction(p, (tx) => queue!.complete(job, {}, tx));
  const names = (await preparedOf(p)).map((r) => r.statement);
  assert.ok(
    names.some((s) => /INSERT INTO pgboss\.job/i.test(s)),
    `insert prepared: ${names.join(' | ')}`,
  );
  assert.ok(
    names.some((s) => /SKIP LOCKED/i.test(s)),
    'fetch prepared',
  );
  assert.ok(
    names.some((s) => /completed_on = now\(\)/i.test(s)),
    'complete prepared',
  );
});
