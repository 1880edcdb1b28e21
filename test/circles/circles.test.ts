/**
 * Circles over real Postgres and the local store: who sees what is shared (owner, member, former
 * member, other user, the owner's device, anonymous × the routes), membership checked on every
 * read and on uploads into a circle, and removal taking effect at once.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { fixture } from '../helpers/files.ts';
import { upload, waitFor } from '../processing/helpers.ts';

const JPEG = fixture('gps/DSCN0010.jpg');
type Auth = Record<string, string>;

let t: TestServer;
before(async () => {
  t = await startTestServer({ DEVICE_KEY_CACHE_SECONDS: '0' });
});
after(async () => {
  await t?.close();
});

async function photo(auth: Auth, extra: Record<string, unknown> = {}) {
  const { id, done } = await upload(t, auth, JPEG, 'image/jpeg', extra);
  assert.equal(done.status, 200, done.text);
  return id;
}
const req = (method: string, p: string, auth: Auth, json?: unknown) =>
  call(t.api(p), { method, headers: auth, ...(json !== undefined ? { json } : {}) });

async function circleOf(owner: Auth, members: string[]) {
  const c = await req('POST', '/circles', owner, { name: 'Family' });
  assert.equal(c.status, 201, c.text);
  for (const m of members)
    assert.equal(
      (await req('POST', `/circles/${c.body.circleId}/members`, owner, { userId: m })).status,
      200,
    );
  return c.body.circleId as string;
}

describe('circles', () => {
  test('authorization matrix: owner, member, former member, other user, device, anonymous', async () => {
    const alice = await t.user('c-alice');
    const carol = await t.user('c-carol');
    const dave = await t.user('c-dave');
    const bob = await t.user('c-bob');
    const cam = await t.device('cam', alice.id);
    const a = await photo(alice.auth);
    const b = await photo(alice.auth);
    const notShared = await photo(alice.auth);
    await waitFor(t, alice.auth, a, ['READY']);
    await waitFor(t, alice.auth, b, ['READY']);
    const p = (await req('POST', '/posts', alice.auth, { mediaIds: [b] })).body.postId as string;
    const circle = await circleOf(alice.auth, [carol.id, dave.id]);
    assert.equal((await req('POST', `/circles/${circle}/shares`, alice.auth, { mediaId: a })).status, 201);
    assert.equal((await req('POST', `/circles/${circle}/shares`, alice.auth, { postId: p })).status, 201);
    assert.equal((await req('DELETE', `/circles/${circle}/members/${dave.id}`, alice.auth)).status, 204);

    const who: Record<string, Auth> = {
      owner: alice.auth,
      member: carol.auth,
      former: dave.auth,
      other: bob.auth,
      device: cam.auth,
      anon: {},
    };
    const routes: [string, string, unknown?][] = [
      ['GET', `/media/${a}`],
      ['GET', `/media/${a}/status`],
      ['GET', `/media/${a}/download`],
      ['GET', `/media/${a}/variants/600`],
      ['GET', `/media/${b}`],
      ['GET', `/media/${notShared}`],
      ['GET', `/posts/${p}`],
      ['GET', `/circles/${circle}`],
      ['GET', `/circles/${circle}/media`],
      ['PATCH', `/posts/${p}`, { caption: 'x' }],
      ['POST', `/media/${a}/retry-processing`],
      ['POST', `/circles/${circle}/members`, { userId: 'c-mallory' }],
    ];
    const expected: Record<string, number[]> = {
      //      get  stat  dl   var  b    not  post circ cmed patch retry addm
      owner: [200, 200, 302, 302, 200, 200, 200, 200, 200, 200, 409, 200],
      member: [200, 200, 404, 302, 200, 404, 200, 200, 200, 404, 404, 403],
      former: [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404],
      other: [404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404, 404],
      // The device reaches none of this: the media were uploaded by Alice herself, posts and
      // circles are for users.
      device: [404, 404, 404, 404, 404, 404, 403, 403, 403, 403, 404, 403],
      anon: [401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401],
    };
    for (const [name, auth] of Object.entries(who)) {
      const got: number[] = [];
      for (const [method, path, json] of routes) {
        const res = await req(method, path, auth, json);
        if (res.status >= 400) assert.equal(typeof res.body?.error?.code, 'string', `${name} ${path}`);
        got.push(res.status);
      }
      assert.deepEqual(got, expected[name], `${name}: ${routes.map((r) => `${r[0]} ${r[1]}`).join(', ')}`);
    }
    // A member's view never carries the location; the owner's does.
    const asMember = await req('GET', `/media/${a}`, carol.auth);
    assert.equal('gps' in asMember.body, false);
    assert.ok((await req('GET', `/media/${a}`, alice.auth)).body.gps, 'the owner sees the GPS');
    // The same for where the original is stored: the local path, for the owner only.
    assert.equal('storageUri' in asMember.body, false);
    assert.equal('storageUri' in (await req('GET', `/media/${b}`, carol.auth)).body, false);
    const { storage_key: key } = (
      await t.server.database.pool.query('SELECT storage_key FROM media WHERE id = $1', [a])
    ).rows[0] as { storage_key: string };
    assert.equal(
      (await req('GET', `/media/${a}`, alice.auth)).body.storageUri,
      path.resolve(t.config.storage.dir, key),
    );
    // What the circle lists: the shared media and the shared post's media, nothing else.
    const listed = (await req('GET', `/circles/${circle}/media`, carol.auth)).body.items.map(
      (m: { mediaId: string }) => m.mediaId,
    );
    assert.deepEqual([...listed].sort(), [a, b].sort());
    // Strangers' 404s read exactly like a missing circle's.
    const ghost = await req('GET', '/circles/00000000-0000-4000-8000-000000000000', bob.auth);
    const real = await req('GET', `/circles/${circle}`, bob.auth);
    assert.deepEqual({ ...real.body.error, requestId: 0 }, { ...ghost.body.error, requestId: 0 });
  });

  test('originals are downloadable by members only when shared with originals', async () => {
    const alice = await t.user('o-alice');
    const carol = await t.user('o-carol');
    const a = await photo(alice.auth);
    const circle = await circleOf(alice.auth, [carol.id]);
    await req('POST', `/circles/${circle}/shares`, alice.auth, { mediaId: a });
    assert.equal((await req('GET', `/media/${a}/download`, carol.auth)).status, 404);
    assert.equal((await req('GET', `/media/${a}/download?mode=url`, carol.auth)).status, 404);
    // Nor does the record hand the member a signed URL of the original.
    assert.equal((await req('GET', `/media/${a}`, carol.auth)).body.downloadUrl, null);
    assert.match((await req('GET', `/media/${a}`, alice.auth)).body.downloadUrl, /^http/);
    const shared = await req('POST', `/circles/${circle}/shares`, alice.auth, {
      mediaId: a,
      originals: true,
    });
    assert.equal(shared.body.originals, true);
    const dl = await call(t.api(`/media/${a}/download`), { headers: carol.auth, redirect: 'follow' });
    assert.equal(dl.status, 200);
    assert.equal(dl.text.length > 0, true);
    const signed = (await req('GET', `/media/${a}`, carol.auth)).body.downloadUrl;
    assert.equal((await call(signed)).text, dl.text, 'with originals, the record signs the original');
  });

  test('removing a member revokes access at once, variants and posts included', async () => {
    const alice = await t.user('r-alice');
    const carol = await t.user('r-carol');
    const a = await photo(alice.auth);
    await waitFor(t, alice.auth, a, ['READY']);
    const circle = await circleOf(alice.auth, [carol.id]);
    await req('POST', `/circles/${circle}/shares`, alice.auth, { mediaId: a });
    assert.equal((await req('GET', `/media/${a}/variants/300`, carol.auth)).status, 302);
    assert.equal((await req('DELETE', `/circles/${circle}/members/${carol.id}`, alice.auth)).status, 204);
    for (const path of [`/media/${a}`, `/media/${a}/variants/300`, `/circles/${circle}/media`]) {
      assert.equal((await req('GET', path, carol.auth)).status, 404, path);
    }
  });

  describe('a member who leaves', () => {
    let alice: { id: string; auth: Record<string, string> };
    let carol: { id: string; auth: Record<string, string> };
    let erin: { id: string; auth: Record<string, string> };
    let circle: string;
    let hers: string;
    let alices: string;
    before(async () => {
      alice = await t.user('l-alice');
      carol = await t.user('l-carol');
      erin = await t.user('l-erin');
      circle = await circleOf(alice.auth, [carol.id, erin.id]);
      hers = await photo(carol.auth);
      alices = await photo(alice.auth);
    });

    test('takes their shares along', async () => {
      assert.equal(
        (await req('POST', `/circles/${circle}/shares`, carol.auth, { mediaId: hers })).status,
        201,
      );
      assert.equal(
        (await req('POST', `/circles/${circle}/shares`, alice.auth, { mediaId: alices })).status,
        201,
      );
      assert.equal((await req('GET', `/media/${hers}`, erin.auth)).status, 200);
      assert.equal((await req('DELETE', `/circles/${circle}/members/${carol.id}`, carol.auth)).status, 204);
      assert.equal((await req('GET', `/media/${hers}`, erin.auth)).status, 404);
    });

    test('leaves the others’ shares in place', async () => {
      assert.equal((await req('GET', `/media/${alices}`, erin.auth)).status, 200);
    });

    test('a member removes nobody else', async () => {
      // A member removes nobody else.
      assert.equal((await req('DELETE', `/circles/${circle}/members/${alice.id}`, erin.auth)).status, 403);
    });
  });

  test('a member’s upload into a circle is shared at once', async () => {
    const alice = await t.user('u-alice');
    const carol = await t.user('u-carol');
    const circle = await circleOf(alice.auth, [carol.id]);
    const intoCircle = await photo(carol.auth, { circleId: circle });
    assert.equal((await req('GET', `/media/${intoCircle}`, alice.auth)).status, 200);
  });

  test('a non-member’s upload into a circle is refused before anything is written', async () => {
    const alice = await t.user('u-alice-2');
    const bob = await t.user('u-bob');
    const circle = await circleOf(alice.auth, []);
    const before = Number((await t.server.database.pool.query('SELECT count(*) AS n FROM media')).rows[0].n);
    const refused = await req('POST', '/media', bob.auth, {
      fileName: 'x.jpg',
      mimeType: 'image/jpeg',
      bytes: JPEG.length,
      circleId: circle,
    });
    assert.equal(refused.status, 404, refused.text);
    const after = Number((await t.server.database.pool.query('SELECT count(*) AS n FROM media')).rows[0].n);
    assert.equal(after, before, 'no session was made');
  });

  test('only what you own can be shared, only into a circle of yours', async () => {
    const alice = await t.user('s-alice');
    const bob = await t.user('s-bob');
    const bobs = await photo(bob.auth);
    const circle = await circleOf(alice.auth, []);
    assert.equal((await req('POST', `/circles/${circle}/shares`, alice.auth, { mediaId: bobs })).status, 404);
    assert.equal((await req('POST', `/circles/${circle}/shares`, bob.auth, { mediaId: bobs })).status, 404);
    const both = await req('POST', `/circles/${circle}/shares`, alice.auth, {});
    assert.equal(both.status, 400, both.text);
  });
});
