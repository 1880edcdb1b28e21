/**
 * Per-uploader quotas over real Postgres: open sessions and stored bytes, checked when a session is
 * created, answered with the limit and the current usage; usage follows completion, cancel and
 * deletion (a trigger keeps it), and replays are answered even at the limit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { fixture, sha256 } from '../helpers/files.ts';

const JPEG = fixture('cameras/Canon_40D.jpg');
type Auth = Record<string, string>;

let t: TestServer;
before(async () => {
  t = await startTestServer({
    QUOTA_DEVICE_OPEN_SESSIONS: '2',
    QUOTA_USER_OPEN_SESSIONS: '0',
    QUOTA_USER_BYTES: String(Math.floor(JPEG.length * 2.5)),
  });
});
after(async () => {
  await t?.close();
});

const session = (auth: Auth, extra: Record<string, unknown> = {}) =>
  call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: { fileName: 'q.jpg', mimeType: 'image/jpeg', bytes: JPEG.length, sha256: sha256(JPEG), ...extra },
  });

async function finish(auth: Auth, s: Awaited<ReturnType<typeof session>>) {
  assert.equal(s.status, 201, s.text);
  await call(s.body.upload.url, { method: 'PUT', headers: { 'content-type': 'image/jpeg' }, body: JPEG });
  const done = await call(t.api(`/media/${s.body.mediaId}/complete`), { method: 'POST', headers: auth });
  assert.equal(done.status, 200, done.text);
  return s.body.mediaId as string;
}

describe('quotas', () => {
  describe('open sessions', () => {
    let cam: { auth: Record<string, string> };
    let one: Awaited<ReturnType<typeof session>>;
    let two: Awaited<ReturnType<typeof session>>;
    before(async () => {
      cam = await t.device('quota-cam');
      one = await session(cam.auth, { messageId: 'q-1' });
      two = await session(cam.auth, { messageId: 'q-2' });
      assert.equal(one.status, 201);
      assert.equal(two.status, 201);
    });

    test('past the limit: 403 naming the limit with the usage', async () => {
      const three = await session(cam.auth, { messageId: 'q-3' });
      assert.equal(three.status, 403, three.text);
      assert.equal(three.body.error.code, 'quota_exceeded');
      assert.deepEqual(three.body.error.details, {
        usage: { storedBytes: 2 * JPEG.length, openSessions: 2 },
        limits: { storedBytes: 0, openSessions: 2 },
        limit: 'openSessions',
      });
    });

    test('replays still answer at the limit', async () => {
      const replay = await session(cam.auth, { messageId: 'q-1' });
      assert.equal(replay.status, 200, 'a replay creates nothing and is answered');
    });

    test('completing frees a slot', async () => {
      await finish(cam.auth, { ...one, status: 201 });
      assert.equal((await session(cam.auth, { messageId: 'q-3' })).status, 201);
    });

    test('a cancel frees a slot', async () => {
      const cancel = await call(t.api(`/media/${two.body.mediaId}/cancel`), {
        method: 'POST',
        headers: cam.auth,
      });
      assert.equal(cancel.status, 200, cancel.text);
      assert.equal((await session(cam.auth, { messageId: 'q-4' })).status, 201, 'a cancel frees a slot');
    });
  });

  describe('stored bytes', () => {
    let alice: { id: string; auth: Record<string, string> };
    let a: string;
    before(async () => {
      alice = await t.user('quota-alice');
      a = await finish(alice.auth, await session(alice.auth));
      await finish(alice.auth, await session(alice.auth));
    });

    test('the usage shows them with the limits', async () => {
      const usage = await call(t.api('/users/me/usage'), { headers: alice.auth });
      assert.equal(usage.status, 200, usage.text);
      assert.deepEqual(usage.body, {
        storedBytes: 2 * JPEG.length,
        openSessions: 0,
        limits: { storedBytes: Math.floor(JPEG.length * 2.5), openSessions: 0 },
      });
    });

    test('over the quota a session is refused before anything is written', async () => {
      const count = async () =>
        Number(
          (
            await t.server.database.pool.query(`SELECT count(*) AS n FROM media WHERE owner_user_id = $1`, [
              alice.id,
            ])
          ).rows[0].n,
        );
      const before = await count();
      const over = await session(alice.auth);
      assert.equal(over.status, 403, over.text);
      assert.equal(over.body.error.details.limit, 'storedBytes');
      assert.equal(await count(), before, 'no row for a refused session');
    });

    test('deleting frees space', async () => {
      assert.equal((await call(t.api(`/media/${a}`), { method: 'DELETE', headers: alice.auth })).status, 204);
      assert.equal((await session(alice.auth)).status, 201, 'deleting freed the space');
    });
  });

  test('usage is visible to the device and its owner only', async () => {
    const owner = await t.user('quota-owner');
    const other = await t.user('quota-other');
    const cam = await t.device('quota-cam-2', owner.id);
    await session(cam.auth, { messageId: 'u-1' });
    for (const auth of [cam.auth, owner.auth]) {
      const res = await call(t.api(`/devices/${cam.id}/usage`), { headers: auth });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, {
        storedBytes: JPEG.length,
        openSessions: 1,
        limits: { storedBytes: 0, openSessions: 2 },
      });
    }
    assert.equal((await call(t.api(`/devices/${cam.id}/usage`), { headers: other.auth })).status, 404);
    assert.equal((await call(t.api(`/users/${owner.id}/usage`), { headers: other.auth })).status, 404);
    assert.equal((await call(t.api(`/users/me/usage`), { headers: cam.auth })).status, 404);
    assert.equal((await call(t.api(`/users/me/usage`), {})).status, 401);
  });
});
