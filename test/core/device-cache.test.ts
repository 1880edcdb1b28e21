/**
 * The device-key cache (on by default) against a real server and Postgres: cached keys save the
 * lookup, yet a revocation, an owner change or a deletion takes effect at once through the
 * database's NOTIFY; with the LISTEN connection gone the cache is not trusted. And the rate limit
 * gives back requests that failed on our side (5xx), so an outage does not spend a client's budget.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { revokeDevice } from '../../src/auth/principals.ts';
import { memoryRateWindows, refundableRateLimit } from '../../src/http/rate-limit-store.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer({ DEVICE_KEY_CACHE_SECONDS: '300' });
});
after(async () => {
  await t?.close();
});

const pool = () => t.server.database.pool;
/** A request that only needs the key to authenticate (a listing would also look the device up). */
const probe = (dev: { auth: Record<string, string> }) =>
  call(t.api('/media'), {
    method: 'POST',
    headers: dev.auth,
    json: { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes: 10 },
  });
const OK = 201;

/**
 * The server's LISTEN connection, once it is listening. Test files share one Postgres cluster (a
 * database each), so the other servers' listeners are excluded: killing one of those instead left
 * this server's cache trusted and failed the test.
 */
async function listenerPid(): Promise<number> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await pool().query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE query = 'LISTEN mediary_devices' AND pid <> pg_backend_pid()
          AND datname = current_database()`,
    );
    if (rows[0]) return rows[0].pid;
    if (Date.now() > deadline) throw new Error('the server never listened on mediary_devices');
    await sleep(20);
  }
}

/** Changes a device row without firing its trigger (no NOTIFY): what a missed notification looks like. */
async function silently(sql: string, id: string): Promise<void> {
  const c = await pool().connect();
  try {
    await c.query('BEGIN');
    await c.query('SET LOCAL session_replication_role = replica');
    await c.query(sql, [id]);
    await c.query('COMMIT');
  } finally {
    c.release();
  }
}

/** Polls until `check` holds (at most `ms`); returns how long it took. */
async function within(ms: number, check: () => Promise<boolean>): Promise<number> {
  const t0 = Date.now();
  while (!(await check())) {
    if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms`);
    await sleep(10);
  }
  return Date.now() - t0;
}

/**
 * Waits until the server trusts its cache: the backend shows its LISTEN query before the server has
 * read the answer, so this polls with a fresh device each round until a key revoked silently (no
 * NOTIFY) is still served from the cache.
 */
async function cacheServes(label: string): Promise<void> {
  let round = 0;
  await within(5000, async () => {
    const dev = await t.device(`${label}-${round++}`);
    assert.equal((await probe(dev)).status, OK);
    await silently('UPDATE devices SET revoked_at = now() WHERE id = $1', dev.id);
    return (await probe(dev)).status === OK;
  });
}

describe('device-key cache', () => {
  test('keys are cached, and a revocation still takes effect at once', async () => {
    await listenerPid();
    await cacheServes('warm-up');
    const dev = await t.device('cached');
    assert.equal((await probe(dev)).status, OK);
    // Revoked behind the cache's back (no NOTIFY): the cached key keeps working — the cache is real.
    await silently('UPDATE devices SET revoked_at = now() WHERE id = $1', dev.id);
    assert.equal((await probe(dev)).status, OK, 'served from the cache');
    await silently('UPDATE devices SET revoked_at = NULL WHERE id = $1', dev.id);
    // A real revocation (the CLI's code path) is announced and refused well inside the 300 s TTL.
    assert.equal(await revokeDevice(pool(), dev.id), true);
    const ms = await within(2000, async () => (await probe(dev)).status === 401);
    assert.ok(ms < 2000);
    const refused = await probe(dev);
    assert.equal(refused.status, 401);
    assert.equal(refused.body.error.code, 'unauthorized');
  });

  test('an owner change and a deleted device are seen at once', async () => {
    await listenerPid();
    const dev = await t.device('moved', 'owner-1');
    const session = () => probe(dev);
    const ownerOf = async (id: string) =>
      (await pool().query<{ o: string }>('SELECT owner_user_id AS o FROM media WHERE id = $1', [id])).rows[0]!
        .o;
    const first = await session();
    assert.equal(first.status, 201);
    assert.equal(await ownerOf(first.body.mediaId), 'owner-1');
    await pool().query(`UPDATE devices SET owner_user_id = 'owner-2' WHERE id = $1`, [dev.id]);
    await within(2000, async () => {
      const s = await session();
      assert.equal(s.status, 201);
      return (await ownerOf(s.body.mediaId)) === 'owner-2';
    });
    await pool().query(`DELETE FROM media WHERE device_id = $1`, [dev.id]);
    await pool().query(`DELETE FROM devices WHERE id = $1`, [dev.id]);
    await within(2000, async () => (await probe(dev)).status === 401);
  });

  test('TRUNCATE devices (no row triggers) still empties the cache at once', async () => {
    await listenerPid();
    const dev = await t.device('wiped');
    assert.equal((await probe(dev)).status, OK);
    await pool().query('TRUNCATE devices CASCADE');
    await within(2000, async () => (await probe(dev)).status === 401);
  });

  test('without the LISTEN connection the cache is not trusted, and it resumes after reconnecting', async () => {
    const pid = await listenerPid();
    const dev = await t.device('cut');
    assert.equal((await probe(dev)).status, OK);
    await pool().query('SELECT pg_terminate_backend($1)', [pid]);
    // A change nobody announces while the connection is down (or before it was re-established).
    await silently('UPDATE devices SET revoked_at = now() WHERE id = $1', dev.id);
    // The server learns of the lost connection when its socket closes (moments after the kill, later
    // on a loaded machine); from then on the cache is bypassed, so the revocation shows.
    await within(5000, async () => (await probe(dev)).status === 401);
    const again = await listenerPid();
    assert.notEqual(again, pid, 'a new LISTEN connection');
    // Caching works again once reconnected.
    await cacheServes('after');
  });
});

describe('rate limit refunds', () => {
  test('the store counts per key and window and gives requests back', async () => {
    let now = 1_000;
    const windows = memoryRateWindows(() => now);
    const limits = refundableRateLimit(windows, () => now);
    const store = new limits.Store({});
    const incr = (key: string) =>
      new Promise<number>((resolve, reject) =>
        store.incr(key, (err, res) => (err ? reject(err) : resolve(res!.current)), 60_000),
      );
    assert.equal(await incr('a'), 1);
    assert.equal(await incr('a'), 2);
    assert.equal(await incr('b'), 1);
    await limits.refund('a');
    assert.equal(windows.count('a'), 1);
    assert.equal(limits.peek('a').count, 1);
    assert.equal(await incr('a'), 2);
    now += 60_000; // a new window
    assert.equal(windows.count('a'), 0);
    assert.equal(limits.peek('a').count, 0);
    await limits.refund('a'); // nothing to give back in a window that has not started
    assert.equal(await incr('a'), 1);
    assert.equal(store.child({}), store, 'routes share the map; keys carry the route');
  });

  test('requests that end in a 5xx do not spend the client’s budget', async () => {
    const limited = await startTestServer({ RATE_LIMIT_SESSIONS_PER_MINUTE: '3' });
    const db = limited.server.database.pool;
    try {
      const dev = await limited.device();
      const post = () =>
        call(limited.api('/media'), {
          method: 'POST',
          headers: dev.auth,
          json: { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes: 10 },
        });
      // The database refuses inserts as a server that is shutting down would (57P03 → 503).
      await db.query(`CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the database is starting up' USING ERRCODE = '57P03'; END $$`);
      await db.query(
        'CREATE TRIGGER test_refuse BEFORE INSERT ON media FOR EACH ROW EXECUTE FUNCTION test_refuse()',
      );
      for (let i = 0; i < 6; i++) {
        const r = await post();
        assert.equal(r.status, 503, r.text);
        assert.ok(r.headers.get('retry-after'));
      }
      await db.query('DROP TRIGGER test_refuse ON media');
      // The whole budget is still there: three sessions, then 429.
      for (let i = 0; i < 3; i++) assert.equal((await post()).status, 201);
      const over = await post();
      assert.equal(over.status, 429);
      assert.equal(over.body.error.code, 'rate_limited');
    } finally {
      await limited.close();
    }
  });
});
