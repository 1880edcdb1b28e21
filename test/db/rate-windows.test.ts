import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startEmbedded, type EmbeddedDatabase } from '../../src/db/embedded.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPool, type Pool } from '../../src/db/pool.ts';
import { PgRateWindows } from '../../src/db/rate-windows.ts';
import { refundableRateLimit } from '../../src/http/rate-limit-store.ts';
import { createLogger } from '../../src/log.ts';
import { freePort, tempDir } from '../helpers/server.ts';
import { createTestDatabase } from '../helpers/test-postgres.ts';

let dir: string;
let database: EmbeddedDatabase | undefined;
let a: Pool;
let b: Pool;
before(async () => {
  dir = await tempDir('mediary-rate-windows-');
  const logger = createLogger('silent');
  let url = await createTestDatabase();
  if (url === undefined) {
    database = await startEmbedded({ dir: path.join(dir, 'postgres'), port: await freePort(), logger });
    url = database.url;
  }
  a = createPool(url, logger, 8);
  b = createPool(url, logger, 8);
  await migrate(a, logger);
});
after(async () => {
  await a?.end();
  await b?.end();
  await database?.stop();
  await rm(dir, { recursive: true, force: true });
});

test('two processes spend one budget per key: concurrent hits get distinct counts', async () => {
  const wa = new PgRateWindows(a);
  const wb = new PgRateWindows(b, false);
  const hits = await Promise.all(
    Array.from({ length: 40 }, (_, i) => (i % 2 ? wa : wb).hit('sessions device:1', 60_000)),
  );
  assert.deepEqual(
    hits.map((h) => h.count).sort((x, y) => x - y),
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  for (const h of hits) assert.ok(h.ttl > 0 && h.ttl <= 60_000, `ttl ${h.ttl}`);
  assert.equal(await wb.count('sessions device:1'), 40);
  assert.equal(await wa.count('sessions device:2'), 0, 'keys are apart');
});

test('a refund gives one back in the open window', async () => {
  const wa = new PgRateWindows(a);
  const wb = new PgRateWindows(b);
  assert.equal((await wa.hit('k', 150)).count, 1);
  assert.equal((await wb.hit('k', 150)).count, 2);
  await wb.refund('k');
  assert.equal(await wa.count('k'), 1);
});

test('an ended window starts over, and a refund in it gives nothing back', async () => {
  const wa = new PgRateWindows(a);
  const wb = new PgRateWindows(b);
  assert.equal((await wa.hit('k-ended', 150)).count, 1);
  assert.equal((await wb.hit('k-ended', 150)).count, 2);
  await sleep(200); // longer than the window
  assert.equal(await wa.count('k-ended'), 0);
  await wa.refund('k-ended'); // nothing to give back in an ended window
  assert.equal((await wb.hit('k-ended', 60_000)).count, 1, 'a new window');
});

test('ended windows are deleted, open ones stay', async () => {
  const wa = new PgRateWindows(a);
  const wb = new PgRateWindows(b);
  assert.equal((await wa.hit('k-open', 60_000)).count, 1);
  assert.ok((await wa.deleteExpired()) >= 0);
  await wa.hit('gone', 1);
  await sleep(20);
  assert.ok((await wb.deleteExpired()) >= 1);
  assert.equal(
    (await a.query(`SELECT count(*)::int AS n FROM rate_limit_windows WHERE name = 'gone'`)).rows[0].n,
    0,
  );
  assert.equal(await wa.count('k-open'), 1, 'open windows stay');
});

test('peek answers from what this process last counted, without a round trip', async () => {
  const limits = refundableRateLimit(new PgRateWindows(a));
  const other = refundableRateLimit(new PgRateWindows(b));
  assert.deepEqual(limits.peek('auth-failures ip:1'), { count: 0, ttl: 0 });
  await other.hit('auth-failures ip:1', 60_000);
  await other.hit('auth-failures ip:1', 60_000);
  // Not seen here yet; this process's next hit learns the shared count.
  assert.equal(limits.peek('auth-failures ip:1').count, 0);
  assert.equal((await limits.hit('auth-failures ip:1', 60_000)).count, 3);
  assert.equal(limits.peek('auth-failures ip:1').count, 3);
});
