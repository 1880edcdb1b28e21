/**
 * Two API servers on one database (in this process, for speed; test/faults/cluster.fault.ts
 * runs real `mediary` processes): rate limits and periodic jobs are the cluster's, not each
 * process' (issue 17 §4).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

const AUTH_FAILURES = 4;
let one: TestServer;
let two: TestServer;
before(async () => {
  const shared = {
    RATE_LIMIT_SESSIONS_PER_MINUTE: '3',
    RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: String(AUTH_FAILURES),
    SWEEP_INTERVAL_SECONDS: '1',
    SIGNING_SECRET: randomBytes(32).toString('hex'),
    WORKER_ENABLED: 'false',
  };
  one = await startTestServer(shared);
  two = await startTestServer({
    ...shared,
    DATABASE_URL: one.databaseUrl,
    LOCAL_STORAGE_DIR: one.config.storage.dir,
  });
});
after(async () => {
  await two?.close();
  await one?.close();
});

test('the session rate limit counts a principal’s requests on every API process', async () => {
  const dev = await one.device('cam-limit');
  const post = (s: TestServer) =>
    call(s.api('/media'), {
      method: 'POST',
      headers: dev.auth,
      json: { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes: 10 },
    });
  assert.equal((await post(one)).status, 201);
  assert.equal((await post(two)).status, 201);
  assert.equal((await post(one)).status, 201);
  for (const s of [two, one]) {
    const over = await post(s);
    assert.equal(over.status, 429, over.text);
    assert.equal(over.body.error.code, 'rate_limited');
    assert.ok(Number(over.headers.get('retry-after')) >= 1);
  }
});

test('failed authentications from one address count on every API process', async () => {
  const bad = { authorization: `Bearer mdk_${'x'.repeat(40)}` };
  const get = (s: TestServer) => call(s.api('/media/00000000-0000-4000-8000-000000000000'), { headers: bad });
  // Half of the budget on each process.
  for (let i = 0; i < AUTH_FAILURES / 2; i++) {
    assert.equal((await get(one)).status, 401);
    assert.equal((await get(two)).status, 401);
  }
  // The process that counted last already knows the budget is spent.
  assert.equal((await get(two)).status, 429);
  // The other learns it at its next failure at the latest: at most one more 401, then 429 only.
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await get(one)).status);
  assert.ok(statuses.filter((s) => s === 401).length <= 1, statuses.join(','));
  assert.equal(statuses.at(-1), 429);
  // A valid key from that address is refused too (the throttle runs before the key is looked at).
  const dev = await two.device('cam-nat');
  const valid = await call(two.api('/media/00000000-0000-4000-8000-000000000000'), {
    headers: dev.auth,
  });
  assert.equal(valid.status, 429);
});

test('the sweeper runs once per cluster: the processes take turns through periodic_runs', async () => {
  const db = one.server.database.pool;
  const owners = new Set<string>();
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && owners.size === 0) {
    const { rows } = await db.query(`SELECT last_owner FROM periodic_runs WHERE name = 'storage sweep'`);
    for (const r of rows) owners.add(r.last_owner);
    await sleep(100);
  }
  assert.equal(owners.size, 1, 'a sweep was recorded by one process');
});
