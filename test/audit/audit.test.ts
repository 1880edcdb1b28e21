/**
 * The audit log (issue 21) over a real server and Postgres: "who deleted this" (actor, address,
 * user agent; the owner and an administrator see it, nobody else), device actions, downloads and
 * signed URLs, the database refusing UPDATE/DELETE/TRUNCATE, the retention purge deleting only old
 * rows, and a failing or locked audit table never failing or holding up a download.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { fixture } from '../helpers/files.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { BIN } from '../helpers/process.ts';
import { upload } from '../processing/helpers.ts';

const run = promisify(execFile);

const JPEG = fixture('gps/DSCN0010.jpg');
const ADMIN = 'audit-admin';
type Auth = Record<string, string>;

let t: TestServer;
let db: pg.Client;
before(async () => {
  // The purge runs with the sweeper's interval: every second here.
  t = await startTestServer({ ADMIN_USER_IDS: ADMIN, WORKER_ENABLED: 'false', SWEEP_INTERVAL_SECONDS: '1' });
  db = new pg.Client({ connectionString: t.databaseUrl });
  await db.connect();
});
after(async () => {
  await db?.end();
  await t?.close();
});

const as = (auth: Auth, ua: string): Auth => ({ ...auth, 'user-agent': ua });

async function photo(auth: Auth): Promise<string> {
  const { id, done } = await upload(t, auth, JPEG, 'image/jpeg');
  assert.equal(done.status, 200, done.text);
  return id;
}

async function audit(auth: Auth, query: Record<string, string>, admin = false) {
  const r = await call(t.api(`/${admin ? 'admin/' : ''}audit?${new URLSearchParams(query).toString()}`), {
    headers: auth,
  });
  return r;
}

/** The rows `auth` sees for `query`, once `ready` holds for them (reads are written asynchronously). */
async function eventually(
  auth: Auth,
  query: Record<string, string>,
  ready: (items: any[]) => boolean,
  admin = false,
) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = await audit(auth, query, admin);
    assert.equal(r.status, 200, r.text);
    if (ready(r.body.items)) return r.body.items as any[];
    if (Date.now() > deadline) assert.fail(`audit rows not there: ${r.text}`);
    await sleep(25);
  }
}

describe('audit log', () => {
  describe('who deleted this', () => {
    let alice: Awaited<ReturnType<TestServer['user']>>;
    let id: string;

    test('the owner sees the actor, address and user agent', async () => {
      alice = await t.user('audit-alice');
      id = await photo(alice.auth);

      const del = await call(t.api(`/media/${id}`), {
        method: 'DELETE',
        headers: as(alice.auth, 'alice-phone/1.0'),
      });
      assert.equal(del.status, 204, del.text);

      const mine = await audit(alice.auth, { resourceId: id, action: 'media.deleted' });
      assert.equal(mine.status, 200, mine.text);
      assert.equal(mine.body.items.length, 1, mine.text);
      const row = mine.body.items[0];
      assert.deepEqual(row.actor, { kind: 'user', id: alice.id });
      assert.deepEqual(row.resource, { type: 'media', id });
      assert.match(row.ip, /127\.0\.0\.1/);
      assert.equal(row.userAgent, 'alice-phone/1.0');
      assert.equal(typeof row.requestId, 'string');
      assert.equal(row.details.previousStatus, 'UPLOADED');
    });

    test('another user sees nothing about it and has no admin view', async () => {
      const bob = await t.user('audit-bob');
      const other = await audit(bob.auth, { resourceId: id });
      assert.equal(other.status, 200);
      assert.deepEqual(other.body.items, []);
      assert.equal((await audit(bob.auth, { resourceId: id }, true)).status, 403);
    });

    test('an administrator sees it', async () => {
      const admin = await t.user(ADMIN);
      const all = await audit(admin.auth, { resourceId: id, action: 'media.deleted' }, true);
      assert.equal(all.status, 200, all.text);
      assert.equal(all.body.items.length, 1);
      assert.deepEqual(all.body.items[0].actor, { kind: 'user', id: alice.id });
    });

    test('devices read nothing, no credentials is 401 and bad filters are 400', async () => {
      // Devices read nothing; no credentials → 401; bad filters → 400.
      const cam = await t.device('audit-cam', alice.id);
      assert.equal((await audit(cam.auth, {})).status, 403);
      assert.equal((await call(t.api('/audit'))).status, 401);
      assert.equal((await audit(alice.auth, { action: 'nope' })).status, 400);
      const badCursor = await audit(alice.auth, { cursor: 'x' });
      assert.equal(badCursor.status, 400);
      assert.equal(badCursor.body.error.code, 'invalid_cursor');
    });
  });

  test('device actions are recorded for their owners: create, rotate, hand over, revoke', async () => {
    const alice = await t.user('audit-dev-alice');
    const carol = await t.user('audit-dev-carol');
    const created = await call(t.api('/devices'), {
      method: 'POST',
      headers: alice.auth,
      json: { name: 'porch' },
    });
    assert.equal(created.status, 201, created.text);
    const deviceId = created.body.device.deviceId as string;
    const rotated = await call(t.api(`/devices/${deviceId}/rotate-key`), {
      method: 'POST',
      headers: alice.auth,
      json: { overlapSeconds: 0 },
    });
    assert.equal(rotated.status, 200, rotated.text);
    const handed = await call(t.api(`/devices/${deviceId}`), {
      method: 'PATCH',
      headers: alice.auth,
      json: { ownerUserId: carol.id },
    });
    assert.equal(handed.status, 200, handed.text);
    const revoked = await call(t.api(`/devices/${deviceId}/revoke`), { method: 'POST', headers: carol.auth });
    assert.equal(revoked.status, 200, revoked.text);

    const aliceSees = await audit(alice.auth, { resourceId: deviceId });
    assert.deepEqual(
      aliceSees.body.items.map((r: any) => r.action),
      ['device.handed_over', 'device.key_rotated', 'device.created'],
    );
    for (const r of aliceSees.body.items) assert.deepEqual(r.actor, { kind: 'user', id: alice.id });
    assert.deepEqual(aliceSees.body.items[0].details, { from: alice.id, to: carol.id });
    const carolSees = await audit(carol.auth, { resourceId: deviceId });
    assert.deepEqual(
      carolSees.body.items.map((r: any) => [r.action, r.actor.id]),
      [
        ['device.revoked', carol.id],
        ['device.handed_over', alice.id],
      ],
    );

    // Pagination: one row per page, newest first, the same rows.
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await audit(alice.auth, {
        resourceId: deviceId,
        limit: '1',
        ...(cursor ? { cursor } : {}),
      });
      assert.equal(page.status, 200, page.text);
      seen.push(...page.body.items.map((r: any) => r.action));
      cursor = page.body.nextCursor ?? undefined;
    } while (cursor);
    assert.deepEqual(seen, ['device.handed_over', 'device.key_rotated', 'device.created']);
  });

  test('downloads and signed URLs are recorded with who, what and from where', async () => {
    const alice = await t.user('audit-dl-alice');
    const id = await photo(alice.auth);
    const ua = as(alice.auth, 'audit-downloader/2');
    assert.equal((await call(t.api(`/media/${id}/download`), { headers: ua })).status, 302);
    assert.equal((await call(t.api(`/media/${id}/download?mode=url`), { headers: ua })).status, 200);
    assert.equal((await call(t.api(`/media/${id}`), { headers: ua })).status, 200);
    const rows = await eventually(
      alice.auth,
      { resourceId: id },
      (items) =>
        items.filter((r) => r.action === 'media.downloaded').length === 2 &&
        items.some((r) => r.action === 'media.urls_issued'),
    );
    const modes = rows
      .filter((r) => r.action === 'media.downloaded')
      .map((r) => r.details.mode)
      .sort();
    assert.deepEqual(modes, ['redirect', 'url']);
    for (const r of rows) {
      assert.deepEqual(r.actor, { kind: 'user', id: alice.id });
      assert.equal(r.userAgent, 'audit-downloader/2');
      assert.match(r.ip, /127\.0\.0\.1/);
    }
    const bob = await t.user('audit-dl-bob');
    assert.deepEqual((await audit(bob.auth, { resourceId: id })).body.items, []);
  });

  test('the database refuses UPDATE, DELETE and TRUNCATE of audit rows', async () => {
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_log');
    assert.ok(rows[0]!.n > 0);
    for (const sql of [
      `UPDATE audit_log SET actor_id = 'someone-else'`,
      'DELETE FROM audit_log',
      'TRUNCATE audit_log',
      // The purge's own guard: it never deletes the last day.
      `SELECT audit_purge(now(), 1000)`,
    ]) {
      await assert.rejects(
        db.query(sql),
        (err: Error & { code?: string }) => {
          assert.match(err.message, /append-only|keeps at least/);
          return true;
        },
        sql,
      );
    }
    const after = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_log WHERE actor_id = 'someone-else'`,
    );
    assert.equal(after.rows[0]!.n, 0);
  });

  test('retention: the periodic purge deletes rows past AUDIT_RETENTION_DAYS and nothing newer', async () => {
    const insert = (days: number, resourceId: string) =>
      db.query(
        `INSERT INTO audit_log (at, action, actor_kind, actor_id, resource_type, resource_id)
         VALUES (now() - make_interval(days => $1), 'media.downloaded', 'user', 'x', 'media', $2)`,
        [days, resourceId],
      );
    await insert(400, 'retention-old');
    await insert(364, 'retention-young');
    const count = async (resourceId: string) =>
      (
        await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_log WHERE resource_id = $1', [
          resourceId,
        ])
      ).rows[0]!.n;
    const deadline = Date.now() + 15_000;
    while ((await count('retention-old')) > 0) {
      if (Date.now() > deadline) assert.fail('the old audit row was not purged');
      await sleep(50);
    }
    assert.equal(await count('retention-young'), 1);
    const recent = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_log WHERE at > now() - interval '1 day'`,
    );
    assert.ok(recent.rows[0]!.n > 0);
  });

  test('an audit table that refuses or locks inserts never fails or holds up a download', async () => {
    const alice = await t.user('audit-fail-alice');
    const id = await photo(alice.auth);
    // Unwritable: every INSERT fails.
    await db.query(`CREATE FUNCTION audit_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'audit log unwritable (test)'; END; $$`);
    await db.query(
      `CREATE TRIGGER audit_test_refuse BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_test_refuse()`,
    );
    try {
      for (const mode of ['redirect', 'url', 'proxy']) {
        const r = await call(t.api(`/media/${id}/download?mode=${mode}`), { headers: alice.auth });
        assert.equal(r.status, mode === 'redirect' ? 302 : 200, r.text);
      }
      assert.equal((await call(t.api(`/media/${id}`), { headers: alice.auth })).status, 200);
    } finally {
      await db.query('DROP TRIGGER audit_test_refuse ON audit_log');
      await db.query('DROP FUNCTION audit_test_refuse()');
    }
    // Locked (a long migration, a stuck transaction): the download does not wait for it.
    const locker = new pg.Client({ connectionString: t.databaseUrl });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE audit_log IN ACCESS EXCLUSIVE MODE');
      const r = await call(t.api(`/media/${id}/download?mode=proxy`), {
        headers: as(alice.auth, 'while-locked'),
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.text.length > 0, true);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
    }
    // Once the table takes rows again, the writer goes on: the download made while it was locked lands.
    await eventually(alice.auth, { resourceId: id }, (items) =>
      items.some((r) => r.userAgent === 'while-locked'),
    );
  });

  test('admin commands: `mediary devices create` is recorded as the operator, `mediary audit` reads it', async () => {
    const env = { ...process.env, ...t.env };
    const created = await run(process.execPath, [BIN, 'devices', 'create', '--name', 'cli-cam', '--json'], {
      env,
    });
    const deviceId = JSON.parse(created.stdout).id as string;
    const read = await run(process.execPath, [BIN, 'audit', '--resource', deviceId, '--json'], { env });
    const rows = read.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      rows.map((r) => [r.action, r.actor_kind]),
      [['device.created', 'cli']],
    );
    assert.match(rows[0].actor_id, /@/);
  });
});
