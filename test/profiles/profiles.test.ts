/**
 * Profile images over real Postgres, the local store, sharp and the in-process worker: square
 * variants, a new image replacing the current one only once READY, the replaced media deleted with
 * its objects, a failed new image keeping the old one, racing replacements, who may set and see
 * what, and the purpose rules (images only, a smaller limit, users only).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { removeUnattachedPostMedia } from '../../src/operations/post-media.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { bigJpeg, waitFor } from '../processing/helpers.ts';

type Auth = Record<string, string>;
const MAX_PROFILE = 2 * 1024 * 1024;

let t: TestServer;
let photo: Buffer;
before(async () => {
  t = await startTestServer({ MAX_PROFILE_IMAGE_BYTES: String(MAX_PROFILE), SWEEP_INTERVAL_SECONDS: '0' });
  photo = await bigJpeg(fixture('cameras/Nikon_D70.jpg'), 900, 600);
});
after(async () => {
  await t?.close();
});

/** A session for a profile image; `send()` uploads and completes it. */
async function session(auth: Auth, bytes = photo, extra: Record<string, unknown> = {}) {
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: {
      fileName: 'me.jpg',
      mimeType: 'image/jpeg',
      bytes: bytes.length,
      sha256: sha256(bytes),
      purpose: 'profile',
      ...extra,
    },
  });
  assert.equal(s.status, 201, s.text);
  const id = s.body.mediaId as string;
  return {
    id,
    async send() {
      const put = await call(s.body.upload.url, {
        method: 'PUT',
        headers: { 'content-type': 'image/jpeg' },
        body: bytes,
      });
      assert.equal(put.status, 200, put.text);
      return call(t.api(`/media/${id}/complete`), { method: 'POST', headers: auth });
    },
  };
}

async function readyImage(auth: Auth): Promise<string> {
  const s = await session(auth);
  assert.equal((await s.send()).status, 200);
  await waitFor(t, auth, s.id, ['READY']);
  return s.id;
}

const setImage = (auth: Auth, mediaId: string) =>
  call(t.api('/profile/image'), { method: 'PUT', headers: auth, json: { mediaId } });
const profile = (auth: Auth, user = 'me') => call(t.api(`/users/${user}/profile`), { headers: auth });
const status = async (id: string) =>
  (await t.server.database.pool.query<{ status: string }>('SELECT status FROM media WHERE id = $1', [id]))
    .rows[0]!.status;
/** Every object of a media on disk: the original and its variants. */
const objectsOf = async (id: string) =>
  (
    await t.server.database.pool.query<{ key: string }>(
      `SELECT storage_key AS key FROM media WHERE id = $1
       UNION ALL SELECT key FROM media_variants WHERE media_id = $1`,
      [id],
    )
  ).rows.map((r) => path.join(t.config.storage.dir, r.key));
/** Waits until none of `files` exists (removed after a commit, maybe by the listener's settle). */
async function gone(files: string[]) {
  const deadline = Date.now() + 30_000;
  while (files.some((k) => existsSync(k))) {
    if (Date.now() > deadline) assert.fail(`still there: ${files.filter((k) => existsSync(k)).join()}`);
    await sleep(25);
  }
}
/** Polls the owner's view until `done`; every view on the way must show a READY image or none. */
async function until(auth: Auth, done: (view: any) => boolean, allowed: (string | null)[]) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const v = await profile(auth);
    assert.equal(v.status, 200, v.text);
    assert.ok(allowed.includes(v.body.mediaId), `shown ${v.body.mediaId}, expected one of ${allowed.join()}`);
    if (done(v.body)) return v.body;
    if (Date.now() > deadline) assert.fail(`profile never settled: ${v.text}`);
    await sleep(25);
  }
}

describe('profile images', () => {
  test('a READY image becomes the avatar at once, with square variants behind a signed redirect', async () => {
    const alice = await t.user('pr-alice-1');
    const id = await readyImage(alice.auth);
    const set = await setImage(alice.auth, id);
    assert.equal(set.status, 200, set.text);
    assert.equal(set.body.mediaId, id);
    assert.equal(set.body.pending, null);
    assert.ok(set.body.placeholder);
    assert.deepEqual(
      set.body.variants.map((v: any) => [v.name, v.width, v.height]),
      [
        ['600', 600, 600],
        ['300', 300, 300],
        ['150', 150, 150],
      ],
    );
    const redirect = await call(t.api('/users/me/profile-image?size=150'), { headers: alice.auth });
    assert.equal(redirect.status, 302, redirect.text);
    assert.equal(redirect.headers.get('cache-control'), 'no-store');
    const img = await fetch(redirect.headers.get('location')!);
    assert.equal(img.status, 200);
    const meta = await sharp(Buffer.from(await img.arrayBuffer())).metadata();
    assert.deepEqual([meta.format, meta.width, meta.height], ['webp', 150, 150]);
    const asUrl = await call(t.api(`/users/${alice.id}/profile-image?mode=url`), { headers: alice.auth });
    assert.equal(asUrl.status, 200, asUrl.text);
    assert.equal(asUrl.body.url, set.body.variants[1].url, 'size 300 by default, same URL within a window');
  });

  test('a new image waits until READY, then replaces the old, which is deleted with its objects', async () => {
    const alice = await t.user('pr-alice-2');
    const old = await readyImage(alice.auth);
    assert.equal((await setImage(alice.auth, old)).status, 200);
    const oldObjects = await objectsOf(old);
    assert.ok(oldObjects.length >= 4 && oldObjects.every((k) => existsSync(k)));

    const next = await session(alice.auth);
    const waiting = await setImage(alice.auth, next.id);
    assert.equal(waiting.status, 202, waiting.text);
    assert.equal(waiting.body.mediaId, old, 'the old image stays until the new one is READY');
    assert.deepEqual(waiting.body.pending, { mediaId: next.id, status: 'PENDING' });
    const shown = await call(t.api('/users/me/profile-image?mode=url'), { headers: alice.auth });
    assert.equal(shown.status, 200);
    assert.ok((await fetch(shown.body.url)).ok, 'the old image is still served');

    assert.equal((await next.send()).status, 200);
    const done = await until(alice.auth, (v) => v.mediaId === next.id, [old, next.id]);
    assert.equal(done.pending, null);
    assert.equal(done.version, waiting.body.version + 1);
    assert.notEqual(done.variants[0].url, waiting.body.variants[0].url, 'a new image has new URLs');
    assert.equal(await status(old), 'DELETED');
    // Objects go right after the swap's commit (by whichever process settled it).
    await gone(oldObjects);
  });

  test('a new image that fails leaves the current one, and is dropped', async () => {
    const alice = await t.user('pr-alice-3');
    const current = await readyImage(alice.auth);
    assert.equal((await setImage(alice.auth, current)).status, 200);
    // Declared a JPEG, but is not one: completion fails it (type sniffed from the bytes).
    const lie = Buffer.from('<html><script>alert(1)</script></html>'.padEnd(2000, ' '));
    const bad = await session(alice.auth, lie);
    assert.equal((await setImage(alice.auth, bad.id)).status, 202);
    const completed = await bad.send();
    assert.ok(completed.status >= 400 && completed.status < 500, completed.text);
    const v = await until(alice.auth, (x) => x.pending === null, [current]);
    assert.equal(v.mediaId, current);
    assert.equal(await status(bad.id), 'DELETED');
    assert.equal(await status(current), 'READY');
    // A FAILED image is refused outright.
    const failed = await session(alice.auth, lie);
    await failed.send();
    const refused = await setImage(alice.auth, failed.id);
    assert.equal(refused.status, 409, refused.text);
    assert.equal(refused.body.error.code, 'profile_image_refused');
    assert.equal(refused.body.error.details.reason, 'failed');
    assert.equal((await profile(alice.auth)).body.mediaId, current);
  });

  describe('a ready image set over a waiting one', () => {
    let alice: { id: string; auth: Record<string, string> };
    let waiting: Awaited<ReturnType<typeof session>>;
    let ready: string;

    test('the last replacement wins', async () => {
      alice = await t.user('pr-alice-4');
      waiting = await session(alice.auth);
      assert.equal((await setImage(alice.auth, waiting.id)).status, 202);
      ready = await readyImage(alice.auth);
      const set = await setImage(alice.auth, ready);
      assert.equal(set.status, 200, set.text);
      assert.equal(set.body.pending, null);
    });

    test('the waiting image it overtook is deleted', async () => {
      assert.equal(await status(waiting.id), 'DELETED');
    });

    test('the overtaken upload can no longer complete into an avatar', async () => {
      // Its upload can no longer complete into an avatar.
      const late = await waiting.send().catch(() => undefined);
      assert.ok(!late || late.status >= 400);
      assert.equal((await profile(alice.auth)).body.mediaId, ready);
    });
  });

  test('racing replacements: one wins, every other image is deleted, nothing is orphaned', async () => {
    const alice = await t.user('pr-alice-5');
    const first = await readyImage(alice.auth);
    assert.equal((await setImage(alice.auth, first)).status, 200);
    const ready = await Promise.all([1, 2, 3].map(() => readyImage(alice.auth)));
    const pending = await Promise.all([1, 2].map(() => session(alice.auth)));
    const results = await Promise.all([
      ...ready.map((id) => setImage(alice.auth, id)),
      ...pending.map((p) => setImage(alice.auth, p.id)),
    ]);
    for (const r of results) assert.ok(r.status === 200 || r.status === 202, r.text);
    // Whatever is still waiting completes; the profile settles on exactly one image.
    await Promise.all(pending.map((p) => p.send().catch(() => undefined)));
    const v = await until(alice.auth, (x) => x.pending === null, [
      first,
      ...ready,
      ...pending.map((p) => p.id),
    ]);
    const all = [first, ...ready, ...pending.map((p) => p.id)];
    const { rows } = await t.server.database.pool.query<{ id: string; status: string }>(
      `SELECT id, status FROM media WHERE owner_user_id = $1 AND purpose = 'profile' AND status <> 'DELETED'`,
      [alice.id],
    );
    assert.deepEqual(
      rows.map((r) => r.id),
      [v.mediaId],
      'only the shown image is left',
    );
    assert.ok(all.includes(v.mediaId));
    assert.notEqual(v.mediaId, first, 'a later image replaced the first');
  });

  describe('who may set and see an avatar', () => {
    let alice: { id: string; auth: Record<string, string> };
    let bob: { id: string; auth: Record<string, string> };
    let cam: { auth: Record<string, string> };
    let alices: string;
    let bobs: string;
    let cid: string;
    before(async () => {
      alice = await t.user('pr-alice-6');
      bob = await t.user('pr-bob-6');
      cam = await t.device('cam', alice.id);
      alices = await readyImage(alice.auth);
      bobs = await readyImage(bob.auth);
    });

    test('nobody sets another’s media as their avatar', async () => {
      // Bob's media as Alice's avatar, or Alice's as Bob's: both read as missing.
      for (const [who, id] of [
        [alice, bobs],
        [bob, alices],
      ] as const) {
        const r = await setImage(who.auth, id);
        assert.equal(r.status, 404, r.text);
      }
      assert.equal((await setImage(cam.auth, alices)).status, 403);
      assert.equal((await setImage(alice.auth, crypto.randomUUID())).status, 404);
    });

    test('a library photo is refused as an avatar', async () => {
      const library = await session(alice.auth, photo, { purpose: 'library' });
      await library.send();
      const wrong = await setImage(alice.auth, library.id);
      assert.equal(wrong.status, 409, wrong.text);
      assert.equal(wrong.body.error.details.reason, 'purpose');
    });

    test('malformed bodies are 400', async () => {
      for (const body of [{}, { mediaId: 'nope' }, { mediaId: alices, extra: 1 }]) {
        const r = await call(t.api('/profile/image'), { method: 'PUT', headers: alice.auth, json: body });
        assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      }
    });

    test('setting one’s own avatar leaves others’ profiles untouched', async () => {
      assert.equal((await setImage(alice.auth, alices)).status, 200);
      assert.equal((await profile(bob.auth)).body.mediaId, null, 'Bob’s own profile is untouched');
    });

    test('outside a shared circle, others get 404 on every read', async () => {
      // Not in a circle with Alice: 404 on every read.
      assert.equal((await profile(bob.auth, alice.id)).status, 404);
      assert.equal(
        (await call(t.api(`/users/${alice.id}/profile-image`), { headers: bob.auth })).status,
        404,
      );
    });

    test('in a shared circle, members see the avatar but not a waiting one', async () => {
      const circle = await call(t.api('/circles'), {
        method: 'POST',
        headers: alice.auth,
        json: { name: 'F' },
      });
      assert.equal(circle.status, 201, circle.text);
      cid = circle.body.circleId;
      const add = await call(t.api(`/circles/${cid}/members`), {
        method: 'POST',
        headers: alice.auth,
        json: { userId: bob.id },
      });
      assert.ok(add.status < 300, add.text);
      const seen = await profile(bob.auth, alice.id);
      assert.equal(seen.status, 200, seen.text);
      assert.equal(seen.body.mediaId, alices);
      const next = await session(alice.auth);
      assert.equal((await setImage(alice.auth, next.id)).status, 202);
      assert.equal(
        (await profile(bob.auth, alice.id)).body.pending,
        null,
        'a waiting image is the owner’s business',
      );
      assert.equal(
        (await call(t.api(`/users/${alice.id}/profile-image`), { headers: bob.auth })).status,
        302,
      );
    });

    test('a former member sees nothing', async () => {
      const removed = await call(t.api(`/circles/${cid}/members/${bob.id}`), {
        method: 'DELETE',
        headers: alice.auth,
      });
      assert.ok(removed.status < 300, removed.text);
      assert.equal((await profile(bob.auth, alice.id)).status, 404, 'a former member sees nothing');
    });

    test('no credentials: 401 on every profile route, and nothing changes', async () => {
      // No credentials: 401 on every profile route, and nothing changes.
      for (const [method, url, json] of [
        ['PUT', '/profile/image', { mediaId: alices }],
        ['DELETE', '/profile/image', undefined],
        ['GET', `/users/${alice.id}/profile`, undefined],
        ['GET', `/users/${alice.id}/profile-image`, undefined],
        ['GET', '/users/me/profile', undefined],
      ] as const) {
        const r = await call(t.api(url), { method, ...(json ? { json } : {}) });
        assert.equal(r.status, 401, `${method} ${url}: ${r.text}`);
        assert.equal(r.body.error.code, 'unauthorized');
      }
      assert.equal((await profile(alice.auth)).body.mediaId, alices, 'Alice’s avatar is unchanged');
    });
  });

  test('removing the avatar, or deleting its media, leaves no broken image', async () => {
    const alice = await t.user('pr-alice-7');
    const a = await readyImage(alice.auth);
    assert.equal((await setImage(alice.auth, a)).status, 200);
    const del = await call(t.api(`/media/${a}`), { method: 'DELETE', headers: alice.auth });
    assert.equal(del.status, 204, del.text);
    assert.equal((await profile(alice.auth)).body.mediaId, null);
    assert.equal((await call(t.api('/users/me/profile-image'), { headers: alice.auth })).status, 404);

    const b = await readyImage(alice.auth);
    assert.equal((await setImage(alice.auth, b)).status, 200);
    const objects = await objectsOf(b);
    const gone = await call(t.api('/profile/image'), { method: 'DELETE', headers: alice.auth });
    assert.equal(gone.status, 204, gone.text);
    const v = await profile(alice.auth);
    assert.deepEqual([v.body.mediaId, v.body.variants], [null, []]);
    assert.equal(await status(b), 'DELETED');
    assert.deepEqual(
      objects.filter((k) => existsSync(k)),
      [],
    );
  });

  test('purpose rules: images only, a smaller limit, users only', async () => {
    const alice = await t.user('pr-alice-8');
    const cam = await t.device('cam8', alice.id);
    const create = (auth: Auth, json: Record<string, unknown>) =>
      call(t.api('/media'), {
        method: 'POST',
        headers: auth,
        json: { fileName: 'x', purpose: 'profile', ...json },
      });
    const video = await create(alice.auth, { mimeType: 'video/mp4', bytes: 1000 });
    assert.equal(video.status, 422, video.text);
    assert.equal(video.body.error.code, 'purpose_not_allowed');
    assert.deepEqual(video.body.error.details.allowedMediaTypes, ['image']);
    const big = await create(alice.auth, { mimeType: 'image/jpeg', bytes: MAX_PROFILE + 1 });
    assert.equal(big.status, 413, big.text);
    assert.equal(big.body.error.code, 'file_too_large');
    assert.deepEqual(
      [big.body.error.details.purpose, big.body.error.details.maxBytes],
      ['profile', MAX_PROFILE],
    );
    // The same size is fine for the library (the image limit is larger).
    const library = await create(alice.auth, {
      mimeType: 'image/jpeg',
      bytes: MAX_PROFILE + 1,
      purpose: 'library',
    });
    assert.equal(library.status, 201, library.text);
    const device = await create(cam.auth, { mimeType: 'image/jpeg', bytes: 1000 });
    assert.equal(device.status, 400, device.text);
    assert.equal(device.body.error.details.field, 'purpose');
    const unknown = await create(alice.auth, { mimeType: 'image/jpeg', bytes: 1000, purpose: 'avatar' });
    assert.equal(unknown.status, 400, unknown.text);
    // The one-request form upload applies the same rules.
    const form = new FormData();
    form.set('purpose', 'profile');
    form.set('bytes', '1000');
    form.set('mimeType', 'video/mp4');
    form.set('file', new Blob([Buffer.alloc(1000)], { type: 'video/mp4' }), 'x.mp4');
    const viaForm = await fetch(t.api('/media/form'), { method: 'POST', headers: alice.auth, body: form });
    const body = await viaForm.json();
    assert.equal(viaForm.status, 422, JSON.stringify(body));
    assert.equal(body.error.code, 'purpose_not_allowed');
  });

  describe('profile uploads: shown, waiting and never set', () => {
    let alice: { id: string; auth: Record<string, string> };
    let shown: string;
    let waiting: Awaited<ReturnType<typeof session>>;
    let stray: string;
    let strayObjects: string[];
    before(async () => {
      alice = await t.user('pr-alice-9');
      shown = await readyImage(alice.auth);
      assert.equal((await setImage(alice.auth, shown)).status, 200);
      waiting = await session(alice.auth);
      assert.equal((await setImage(alice.auth, waiting.id)).status, 202);
      stray = await readyImage(alice.auth);
      strayObjects = await objectsOf(stray);
    });
    const lifecycle = (now: Date) =>
      removeUnattachedPostMedia(
        t.server.database.pool,
        t.server.media,
        { graceSeconds: 3600, now },
        t.server.app.log as never,
      );

    test('none goes on a post', async () => {
      const onPost = await call(t.api('/posts'), {
        method: 'POST',
        headers: alice.auth,
        json: { mediaIds: [stray] },
      });
      assert.equal(onPost.status, 409, onPost.text);
      assert.deepEqual(onPost.body.error.details.problems, [{ mediaId: stray, problem: 'wrong_purpose' }]);
    });

    test('one never set is kept within the grace', async () => {
      await lifecycle(new Date());
      assert.equal(await status(stray), 'READY', 'kept within the grace');
    });

    test('one never set is removed after the grace, with its objects', async () => {
      await lifecycle(new Date(Date.now() + 2 * 3600 * 1000));
      assert.equal(await status(stray), 'DELETED');
      assert.deepEqual(
        strayObjects.filter((k) => existsSync(k)),
        [],
      );
    });

    test('the shown and the waiting ones are never removed', async () => {
      await lifecycle(new Date(Date.now() + 2 * 3600 * 1000));
      assert.equal(await status(shown), 'READY');
      assert.equal(await status(waiting.id), 'PENDING');
      assert.equal((await profile(alice.auth)).body.mediaId, shown);
    });
  });
});
