/**
 * Posts over real Postgres and the local store: create, read, list, edit, delete (with its media),
 * the checks that keep a media on one post of its owner, and the lifecycle of post media no post took.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { removeUnattachedPostMedia } from '../../src/operations/post-media.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { fixture } from '../helpers/files.ts';
import { upload as uploadBytes, waitFor } from '../processing/helpers.ts';

const JPEG = fixture('cameras/Nikon_D70.jpg');
type Auth = Record<string, string>;

let t: TestServer;
before(async () => {
  // A small post limit so the limit is cheap to reach; the lifecycle job is driven by the test.
  t = await startTestServer({ POST_MAX_MEDIA: '6', SWEEP_INTERVAL_SECONDS: '0' });
});
after(async () => {
  await t?.close();
});

async function photo(auth: Auth, extra: Record<string, unknown> = {}) {
  const { id, done } = await uploadBytes(t, auth, JPEG, 'image/jpeg', extra);
  assert.equal(done.status, 200, done.text);
  return id;
}

const post = (auth: Auth, json: unknown, headers: Auth = {}) =>
  call(t.api('/posts'), { method: 'POST', headers: { ...auth, ...headers }, json });
const patch = (auth: Auth, id: string, json: unknown) =>
  call(t.api(`/posts/${id}`), { method: 'PATCH', headers: auth, json });
const ids = (p: { media: { mediaId: string }[] }) => p.media.map((m) => m.mediaId);
const postCount = async (owner: string) =>
  Number(
    (await t.server.database.pool.query('SELECT count(*) AS n FROM posts WHERE owner_user_id = $1', [owner]))
      .rows[0].n,
  );

describe('posts', () => {
  test('a post holds the owner’s media in order, each ready to render', async () => {
    const alice = await t.user('p-alice-1');
    const a = await photo(alice.auth);
    const b = await photo(alice.auth);
    const created = await post(alice.auth, { caption: 'Beach', mediaIds: [b, a] });
    assert.equal(created.status, 201, created.text);
    assert.deepEqual(ids(created.body), [b, a]);
    assert.equal(created.body.caption, 'Beach');
    assert.equal(created.body.version, 1);
    await waitFor(t, alice.auth, a, ['READY']);
    await waitFor(t, alice.auth, b, ['READY']);
    const read = await call(t.api(`/posts/${created.body.postId}`), { headers: alice.auth });
    assert.equal(read.status, 200, read.text);
    assert.deepEqual(ids(read.body), [b, a]);
    for (const m of read.body.media) {
      assert.equal(m.status, 'READY');
      assert.ok(m.placeholder, 'a placeholder to paint at once');
      assert.ok(m.width > 0 && m.height > 0, 'dimensions for layout');
      // srcset-ready: every variant has a URL and a width.
      assert.ok(m.variants.length >= 1);
      for (const v of m.variants) assert.ok(v.url && v.width > 0, JSON.stringify(v));
      const bytes = await call(`${t.base}${m.variants.at(-1).url}`, {
        headers: alice.auth,
        redirect: 'follow',
      });
      assert.equal(bytes.status, 200);
    }
  });

  test('media that cannot go on a post are named, and nothing is written', async () => {
    const alice = await t.user('p-alice-2');
    const bob = await t.user('p-bob-2');
    const mine = await photo(alice.auth);
    const onOther = await photo(alice.auth);
    const bobs = await photo(bob.auth);
    const pending = await call(t.api('/media'), {
      method: 'POST',
      headers: alice.auth,
      json: { fileName: 'x.jpg', mimeType: 'image/jpeg', bytes: JPEG.length },
    });
    assert.equal((await post(alice.auth, { mediaIds: [onOther] })).status, 201);
    const before = await postCount(alice.id);
    const ghost = '00000000-0000-4000-8000-000000000000';
    const res = await post(alice.auth, {
      caption: 'nope',
      mediaIds: [mine, ghost, bobs, pending.body.mediaId, onOther, mine],
    });
    assert.equal(res.status, 409, res.text);
    assert.equal(res.body.error.code, 'media_not_attachable');
    assert.deepEqual(res.body.error.details.problems, [
      { mediaId: ghost, problem: 'not_found' },
      // Another user's media reads exactly as a missing one.
      { mediaId: bobs, problem: 'not_found' },
      { mediaId: pending.body.mediaId, problem: 'not_uploaded' },
      { mediaId: onOther, problem: 'on_another_post' },
      { mediaId: mine, problem: 'duplicate' },
    ]);
    assert.equal(await postCount(alice.id), before, 'no post row');
    // `mine` is still free: a valid post takes it.
    assert.equal((await post(alice.auth, { mediaIds: [mine] })).status, 201);
  });

  test('limits, devices and bad input are refused with a 4xx', async () => {
    const alice = await t.user('p-alice-3');
    const cam = await t.device('cam', alice.id);
    const seven = Array.from({ length: 7 }, () => crypto.randomUUID());
    const tooMany = await post(alice.auth, { mediaIds: seven });
    assert.equal(tooMany.status, 400, tooMany.text);
    assert.equal(tooMany.body.error.details.maxMedia, 6);
    const asDevice = await post(cam.auth, { mediaIds: [] });
    assert.equal(asDevice.status, 403, asDevice.text);
    assert.equal((await call(t.api('/users/me/posts'), { headers: cam.auth })).status, 403);
    const devicePostMedia = await call(t.api('/media'), {
      method: 'POST',
      headers: cam.auth,
      json: { fileName: 'x.jpg', mimeType: 'image/jpeg', bytes: 10, purpose: 'post' },
    });
    assert.equal(devicePostMedia.status, 400, devicePostMedia.text);
    for (const body of [
      {},
      { mediaIds: ['nope'] },
      { mediaIds: [], extra: 1 },
      { mediaIds: [], caption: 'a\u0000b' },
    ]) {
      const res = await post(alice.auth, body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
    }
    assert.equal((await post({}, { mediaIds: [] })).status, 401);
  });

  test('the same post again under its Idempotency-Key is the same post', async () => {
    const alice = await t.user('p-alice-4');
    const a = await photo(alice.auth);
    const first = await post(alice.auth, { caption: 'k', mediaIds: [a] }, { 'idempotency-key': 'post-1' });
    const again = await post(alice.auth, { caption: 'k', mediaIds: [a] }, { 'idempotency-key': 'post-1' });
    assert.equal(first.status, 201);
    assert.equal(again.status, 200, again.text);
    assert.equal(again.body.postId, first.body.postId);
  });

  test('other content under a used Idempotency-Key is a 409', async () => {
    const alice = await t.user('p-alice-4b');
    const a = await photo(alice.auth);
    const first = await post(alice.auth, { caption: 'k', mediaIds: [a] }, { 'idempotency-key': 'post-2' });
    assert.equal(first.status, 201);
    const other = await post(
      alice.auth,
      { caption: 'other', mediaIds: [a] },
      { 'idempotency-key': 'post-2' },
    );
    assert.equal(other.status, 409, other.text);
    assert.equal(other.body.error.code, 'idempotency_conflict');
  });

  test('other users and anonymous callers cannot see, edit or delete a post', async () => {
    const alice = await t.user('p-alice-5');
    const bob = await t.user('p-bob-5');
    const created = await post(alice.auth, { caption: 'mine', mediaIds: [await photo(alice.auth)] });
    const id = created.body.postId;
    const ghost = '00000000-0000-4000-8000-000000000000';
    for (const [method, json] of [
      ['GET', undefined],
      ['PATCH', { caption: 'x' }],
      ['DELETE', undefined],
    ] as const) {
      const init = { method, headers: bob.auth, ...(json ? { json } : {}) };
      const res = await call(t.api(`/posts/${id}`), init);
      const none = await call(t.api(`/posts/${ghost}`), init);
      assert.equal(res.status, 404, `${method}: ${res.text}`);
      assert.deepEqual({ ...res.body.error, requestId: 0 }, { ...none.body.error, requestId: 0 });
      assert.equal((await call(t.api(`/posts/${id}`), { method, ...(json ? { json } : {}) })).status, 401);
    }
    assert.equal((await call(t.api(`/users/${alice.id}/posts`), { headers: bob.auth })).status, 404);
    const still = await call(t.api(`/posts/${id}`), { headers: alice.auth });
    assert.equal(still.body.caption, 'mine');
  });

  describe('edits', () => {
    let alice: { auth: Record<string, string> };
    let a: string;
    let b: string;
    let c: string;
    let id: string;
    before(async () => {
      alice = await t.user('p-alice-6');
      [a, b, c] = [await photo(alice.auth), await photo(alice.auth), await photo(alice.auth)];
      const created = await post(alice.auth, { caption: 'v1', mediaIds: [a, b] });
      id = created.body.postId;
    });

    test('an edit reorders, adds and removes media', async () => {
      const edited = await patch(alice.auth, id, { caption: 'v2', mediaIds: [c, a], version: 1 });
      assert.equal(edited.status, 200, edited.text);
      assert.deepEqual(ids(edited.body), [c, a]);
      assert.equal(edited.body.caption, 'v2');
      assert.equal(edited.body.version, 2);
    });

    test('an edit of a stale version is refused', async () => {
      const stale = await patch(alice.auth, id, { caption: 'v1 again', version: 1 });
      assert.equal(stale.status, 409, stale.text);
      assert.equal(stale.body.error.code, 'version_conflict');
      assert.equal(stale.body.error.details.currentVersion, 2);
    });

    test('removed media are free for another post', async () => {
      // b left the post: another post may take it.
      assert.equal((await post(alice.auth, { mediaIds: [b] })).status, 201);
    });

    test('a caption-only edit leaves the media as they are', async () => {
      // Caption only: the media stay as they are.
      const captioned = await patch(alice.auth, id, { caption: 'v3' });
      assert.deepEqual(ids(captioned.body), [c, a]);
    });

    test('a refused edit changes nothing', async () => {
      // A refused edit changes nothing.
      const refused = await patch(alice.auth, id, { caption: 'v4', mediaIds: [b] });
      assert.equal(refused.status, 409);
      const now = await call(t.api(`/posts/${id}`), { headers: alice.auth });
      assert.deepEqual([now.body.caption, ids(now.body)], ['v3', [c, a]]);
    });
  });

  test('concurrent edits never mix: the final list is exactly one of the edits', async () => {
    const alice = await t.user('p-alice-7');
    const m: string[] = [];
    for (let i = 0; i < 6; i++) m.push(await photo(alice.auth));
    const created = await post(alice.auth, { mediaIds: m.slice(0, 3) });
    const id = created.body.postId;
    // Edits over disjoint media too, so only the post's own lock can order them.
    const [a, b, c, d, e, f] = m as [string, string, string, string, string, string];
    const orders = [[a, b, c], [f, e, d], [c, a], [d, f], [b], [e, d, f], [c, b, a], [f]];
    const results = await Promise.all(
      [...orders, ...orders].map((o) => patch(alice.auth, id, { mediaIds: o })),
    );
    for (const r of results) assert.equal(r.status, 200, r.text);
    const final = await call(t.api(`/posts/${id}`), { headers: alice.auth });
    assert.ok(
      orders.some((o) => JSON.stringify(o) === JSON.stringify(ids(final.body))),
      `final ${JSON.stringify(ids(final.body))}`,
    );
    assert.equal(final.body.version, 1 + 2 * orders.length, 'every edit applied once, in turn');
    const positions = await t.server.database.pool.query<{ position: number }>(
      'SELECT position FROM post_media WHERE post_id = $1 ORDER BY position',
      [id],
    );
    assert.deepEqual(
      positions.rows.map((r) => r.position),
      ids(final.body).map((_, i) => i),
    );
  });

  test('two posts racing for one media: exactly one gets it', async () => {
    const alice = await t.user('p-alice-8');
    const a = await photo(alice.auth);
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => post(alice.auth, { caption: `${i}`, mediaIds: [a] })),
    );
    const won = results.filter((r) => r.status === 201);
    assert.equal(won.length, 1, results.map((r) => r.status).join(','));
    for (const r of results.filter((x) => x.status !== 201)) {
      assert.equal(r.status, 409, r.text);
      assert.equal(r.body.error.code, 'media_not_attachable');
    }
    const onPosts = await t.server.database.pool.query('SELECT post_id FROM post_media WHERE media_id = $1', [
      a,
    ]);
    assert.equal(onPosts.rowCount, 1);
  });

  test('deleting a media takes it off its post', async () => {
    const alice = await t.user('p-alice-9');
    const [b, c] = [await photo(alice.auth), await photo(alice.auth)];
    const keep = await post(alice.auth, { mediaIds: [c, b] });
    assert.equal((await call(t.api(`/media/${b}`), { method: 'DELETE', headers: alice.auth })).status, 204);
    assert.deepEqual(ids((await call(t.api(`/posts/${keep.body.postId}`), { headers: alice.auth })).body), [
      c,
    ]);
  });

  test('deleting a post deletes its media and their objects, and nothing else', async () => {
    const alice = await t.user('p-alice-9b');
    const [a, c] = [await photo(alice.auth), await photo(alice.auth)];
    await waitFor(t, alice.auth, a, ['READY']);
    await post(alice.auth, { mediaIds: [c] });
    const gone = await post(alice.auth, { mediaIds: [a] });
    const keys = (
      await t.server.database.pool.query<{ key: string }>(
        `SELECT storage_key AS key FROM media WHERE id = $1 UNION SELECT key FROM media_variants WHERE media_id = $1`,
        [a],
      )
    ).rows.map((r) => path.join(t.config.storage.dir, r.key));
    assert.ok(keys.length >= 2 && keys.every((k) => existsSync(k)), 'original and variants on disk');
    const del = await call(t.api(`/posts/${gone.body.postId}`), { method: 'DELETE', headers: alice.auth });
    assert.equal(del.status, 204, del.text);
    assert.equal((await call(t.api(`/posts/${gone.body.postId}`), { headers: alice.auth })).status, 404);
    assert.equal((await call(t.api(`/media/${a}`), { headers: alice.auth })).status, 404);
    assert.deepEqual(
      keys.filter((k) => existsSync(k)),
      [],
      'every object of the media is gone',
    );
    // The other post and its media are untouched.
    assert.equal((await call(t.api(`/media/${c}`), { headers: alice.auth })).status, 200);
  });

  test('a user’s posts, newest first, page by page', async () => {
    const alice = await t.user('p-alice-10');
    const made: string[] = [];
    for (let i = 0; i < 5; i++)
      made.push((await post(alice.auth, { caption: `#${i}`, mediaIds: [] })).body.postId);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `?limit=2&cursor=${cursor}` : '?limit=2';
      const page = await call(t.api(`/users/me/posts${q}`), { headers: alice.auth });
      assert.equal(page.status, 200, page.text);
      assert.ok(page.body.items.length <= 2);
      seen.push(...page.body.items.map((p: { postId: string }) => p.postId));
      cursor = page.body.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, made.reverse());
    const bad = await call(t.api('/users/me/posts?cursor=nope'), { headers: alice.auth });
    assert.equal(bad.status, 400);
  });

  describe('post media that no post took', () => {
    let alice: { id: string; auth: Record<string, string> };
    let stray: string;
    let attached: string;
    let library: string;
    let capture: string;
    let strayKey: string;
    before(async () => {
      alice = await t.user('p-alice-11');
      const cam = await t.device('cam', alice.id);
      stray = await photo(alice.auth, { purpose: 'post' });
      attached = await photo(alice.auth, { purpose: 'post' });
      library = await photo(alice.auth);
      capture = await photo(cam.auth, { messageId: 'c-1' });
      await post(alice.auth, { mediaIds: [attached] });
      strayKey = (await t.server.database.pool.query('SELECT storage_key FROM media WHERE id = $1', [stray]))
        .rows[0].storage_key as string;
      await waitFor(t, alice.auth, stray, ['READY']);
    });
    const lifecycle = (now: Date) =>
      removeUnattachedPostMedia(
        t.server.database.pool,
        t.server.media,
        { graceSeconds: 3600, now },
        t.server.app.log as never,
      );
    test('are kept within the grace', async () => {
      assert.equal(await lifecycle(new Date()), 0, 'nothing within the grace');
    });

    test('are removed after the grace, with their objects', async () => {
      const later = new Date(Date.now() + 2 * 3600 * 1000);
      assert.ok((await lifecycle(later)) >= 1);
      assert.equal((await call(t.api(`/media/${stray}`), { headers: alice.auth })).status, 404);
      assert.equal(existsSync(path.join(t.config.storage.dir, strayKey)), false, 'its object is gone');
    });

    test('attached post media, library photos and device captures are kept', async () => {
      for (const kept of [attached, library, capture]) {
        assert.equal((await call(t.api(`/media/${kept}`), { headers: alice.auth })).status, 200, kept);
      }
      const view = await call(t.api(`/media/${attached}`), { headers: alice.auth });
      assert.equal(view.body.purpose, 'post');
    });
  });
});
