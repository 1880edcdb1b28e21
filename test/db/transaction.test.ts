import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEmbedded, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { createPool, isDatabaseUnavailable, withTransaction, type Pool } from '../../src/db/pool.ts';
import { createLogger } from '../../src/log.ts';
import { freePort, tempDir } from '../helpers/server.ts';
import { createTestDatabase } from '../helpers/test-postgres.ts';

let dir: string;
let database: EmbeddedDatabase | undefined;
let pool: Pool;
before(async () => {
  dir = await tempDir('mediary-tx-');
  const logger = createLogger('silent');
  // The run's database (a clone of its template), or an embedded Postgres of our own.
  let url = await createTestDatabase();
  if (url === undefined) {
    database = await startEmbedded({ dir: path.join(dir, 'postgres'), port: await freePort(), logger });
    url = database.url;
  }
  pool = createPool(url, logger, 4);
});
after(async () => {
  await pool?.end();
  await database?.stop();
  await rm(dir, { recursive: true, force: true });
});

// Found by the fault suite: a Postgres restart that ended a connection while a transaction held it
// between two queries emitted an unhandled 'error' event and killed the whole API process.
test('a connection terminated between two queries of a transaction fails the transaction, not the process', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onUncaught);
  try {
    await assert.rejects(
      withTransaction(pool, async (tx) => {
        const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await pool.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
        await sleep(300); // the FATAL message arrives while no query is running on this client
        await tx.query('SELECT 1');
      }),
      (err) => isDatabaseUnavailable(err),
    );
    assert.deepEqual(uncaught, []);
    // The broken client was discarded: the pool still serves queries and transactions.
    const n = await withTransaction(
      pool,
      async (tx) => (await tx.query<{ n: number }>('SELECT 2 AS n')).rows[0]!.n,
    );
    assert.equal(n, 2);
  } finally {
    process.off('uncaughtException', onUncaught);
  }
});
