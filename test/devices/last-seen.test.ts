import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { LastSeenWriter } from '../../src/auth/last-seen.ts';
import { createDevice } from '../../src/auth/principals.ts';
import { createPool, type Pool, type Queryable } from '../../src/db/pool.ts';
import { createLogger } from '../../src/log.ts';
import { tempDir } from '../helpers/server.ts';
import { testDatabase } from '../helpers/test-postgres.ts';

const logger = createLogger('silent');
let dir: string;
let database: Awaited<ReturnType<typeof testDatabase>> | undefined;
let pool: Pool;

before(async () => {
  dir = await tempDir('mediary-last-seen-');
  database = await testDatabase(dir);
  pool = createPool(database.url, logger, 4);
});
after(async () => {
  await pool?.end();
  await database?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The pool, counting the statements sent through it. */
function counting(): Queryable & { statements: number } {
  const db = {
    statements: 0,
    query: ((...args: Parameters<Pool['query']>) => {
      db.statements++;
      return (pool.query as (...a: unknown[]) => unknown)(...args);
    }) as Pool['query'],
  };
  return db;
}

const lastSeen = async (ids: string[]) =>
  (
    await pool.query<{ id: string; last_seen_at: Date | null }>(
      'SELECT id, last_seen_at FROM devices WHERE id = ANY($1::uuid[])',
      [ids],
    )
  ).rows;

test('a burst of devices is written in one statement, each device once', async () => {
  const ids = [];
  for (let i = 0; i < 50; i++) ids.push((await createDevice(pool, { name: `burst-${i}` })).device.id);
  const db = counting();
  const writer = new LastSeenWriter(db, logger, 60_000);
  for (let round = 0; round < 3; round++) for (const id of ids) writer.seen(id);
  assert.equal(db.statements, 0, 'nothing is written while the requests are answered');
  assert.ok((await lastSeen(ids)).every((r) => r.last_seen_at === null));
  await writer.flush();
  assert.equal(db.statements, 1);
  const rows = await lastSeen(ids);
  assert.equal(rows.length, ids.length);
  assert.ok(rows.every((r) => r.last_seen_at instanceof Date));
  // Seen again within the resolution: no new write.
  for (const id of ids) writer.seen(id);
  await writer.flush();
  assert.equal(db.statements, 1);
  await writer.close();
});

test('the write happens on its own after the flush interval, and close writes what is pending', async () => {
  const a = (await createDevice(pool, { name: 'timer' })).device.id;
  const b = (await createDevice(pool, { name: 'closing' })).device.id;
  const timed = new LastSeenWriter(pool, logger, 20);
  timed.seen(a);
  for (let i = 0; i < 200 && (await lastSeen([a]))[0]!.last_seen_at === null; i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok((await lastSeen([a]))[0]!.last_seen_at instanceof Date, 'written by the timer');
  await timed.close();

  const closing = new LastSeenWriter(pool, logger, 60_000);
  closing.seen(b);
  await closing.close();
  assert.ok((await lastSeen([b]))[0]!.last_seen_at instanceof Date, 'written by close');

  const db = counting();
  const closed = new LastSeenWriter(db, logger, 60_000);
  await closed.close();
  closed.seen(b);
  await closed.flush();
  assert.equal(db.statements, 0, 'nothing is noted after close');
});

test('a failed write is logged, not thrown, and the devices are written on their next request', async () => {
  const id = (await createDevice(pool, { name: 'retry' })).device.id;
  let fail = true;
  const db: Queryable = {
    query: ((...args: Parameters<Pool['query']>) => {
      if (fail) return Promise.reject(new Error('database unavailable'));
      return (pool.query as (...a: unknown[]) => unknown)(...args);
    }) as Pool['query'],
  };
  const writer = new LastSeenWriter(db, logger, 60_000);
  writer.seen(id);
  await writer.flush();
  assert.equal((await lastSeen([id]))[0]!.last_seen_at, null);
  fail = false;
  writer.seen(id);
  await writer.flush();
  assert.ok((await lastSeen([id]))[0]!.last_seen_at instanceof Date);
  await writer.close();
});
