import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { canSeeLocation } from '../../src/media/privacy.ts';
import { call, JWT_SECRET, startTestServer, type TestServer } from '../helpers/server.ts';
import { fixture, sha256 } from '../helpers/files.ts';

const JPEG = fixture('cameras/Nikon_D70.jpg');

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t?.close();
});

type Auth = Record<string, string>;

async function uploaded(auth: Auth, extra: Record<string, unknown> = {}) {
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: { fileName: 'n.jpg', mimeType: 'image/jpeg', bytes: JPEG.length, sha256: sha256(JPEG), ...extra },
  });
  assert.equal(s.status, 201, s.text);
  await call(s.body.upload.url, { method: 'PUT', headers: { 'content-type': 'image/jpeg' }, body: JPEG });
  const done = await call(t.api(`/media/${s.body.mediaId}/complete`), { method: 'POST', headers: auth });
  assert.equal(done.status, 200, done.text);
  return s.body.mediaId as string;
}

describe('authorization matrix: every route × device A, device B, owner user, other user, anonymous', () => {
  describe('one device’s media', () => {
    let owner: { id: string; auth: Auth };
    let other: { id: string; auth: Auth };
    let devA: { id: string; auth: Auth };
    let devB: { id: string; auth: Auth };
    const anon: Auth = {};
    let mediaId: string;
    let principals: Record<string, Auth>;
    before(async () => {
      owner = await t.user('owner-u1');
      other = await t.user('other-u2');
      devA = await t.device('cam-a', owner.id);
      devB = await t.device('cam-b');
      mediaId = await uploaded(devA.auth);
      principals = {
        devA: devA.auth,
        devB: devB.auth,
        owner: owner.auth,
        other: other.auth,
        anon,
      };
    });
    const reads = (): [string, string][] => [
      ['GET', `/media/${mediaId}`],
      ['GET', `/media/${mediaId}/status`],
      ['GET', `/media/${mediaId}/download`],
      ['GET', `/media/${mediaId}/download?mode=proxy`],
      ['POST', `/media/${mediaId}/complete`],
      ['PUT', `/media/${mediaId}/upload`],
      ['GET', `/devices/${devA.id}/media`],
      ['GET', `/users/${owner.id}/media`],
    ];
    const expected: Record<string, number[]> = {
      //      get  status dl   proxy complete put  devA-list users/owner
      devA: [200, 200, 302, 200, 200, 200, 200, 404],
      devB: [404, 404, 404, 404, 404, 404, 404, 404],
      owner: [200, 200, 302, 200, 200, 200, 200, 200],
      other: [404, 404, 404, 404, 404, 404, 404, 404],
      anon: [401, 401, 401, 401, 401, 401, 401, 401],
    };
    const roles: Record<string, string> = {
      devA: 'the media’s device sees it',
      devB: 'another device gets 404',
      owner: 'its owner sees it',
      other: 'another user gets 404',
      anon: 'no credentials get 401',
    };
    for (const who of Object.keys(expected)) {
      test(`${roles[who]}, on every route`, async () => {
        const auth = principals[who]!;
        const got: number[] = [];
        for (const [method, path] of reads()) {
          const init: Parameters<typeof call>[1] = { method, headers: { ...auth } };
          if (method === 'PUT') {
            init.headers!['content-type'] = 'image/jpeg';
            init.body = JPEG;
          }
          const res = await call(t.api(path), init);
          if (res.status >= 400) {
            assert.equal(typeof res.body?.error?.code, 'string', `${who} ${method} ${path}: JSON error body`);
            if (res.status === 404 && path.includes(mediaId)) {
              // Indistinguishable from an id that does not exist at all.
              const ghost = await call(
                t.api(path.replace(mediaId, '00000000-0000-4000-8000-000000000000')),
                init,
              );
              assert.equal(ghost.status, 404);
              assert.deepEqual({ ...res.body.error, requestId: 0 }, { ...ghost.body.error, requestId: 0 });
            }
          }
          got.push(res.status);
        }
        assert.deepEqual(
          got,
          expected[who],
          `${who}: ${reads()
            .map((r) => r.join(' '))
            .join(', ')}`,
        );
      });
    }

    test('the owner’s own listing includes the device’s media, others’ do not', async () => {
      // The owner's own listing includes the device's media; another user's "me" listing is empty.
      const mine = await call(t.api('/users/me/media'), { headers: owner.auth });
      assert.deepEqual(
        mine.body.items.map((m: { mediaId: string }) => m.mediaId),
        [mediaId],
      );
      const theirs = await call(t.api('/users/me/media'), { headers: other.auth });
      assert.deepEqual(theirs.body.items, []);
      // Devices have no user listing of their own.
      assert.equal((await call(t.api('/users/me/media'), { headers: devA.auth })).status, 404);
    });

    test('strangers cannot delete it, and nothing changes', async () => {
      // Deletion: strangers cannot, and nothing changes; the owner can.
      for (const who of ['devB', 'other'] as const) {
        assert.equal(
          (await call(t.api(`/media/${mediaId}`), { method: 'DELETE', headers: principals[who] })).status,
          404,
        );
      }
      assert.equal((await call(t.api(`/media/${mediaId}`), { method: 'DELETE', headers: anon })).status, 401);
      // Still there (the worker may have processed it meanwhile).
      assert.match(
        (await call(t.api(`/media/${mediaId}`), { headers: devA.auth })).body.status,
        /^(UPLOADED|PROCESSING|READY)$/,
      );
    });

    test('the owner deletes it', async () => {
      assert.equal(
        (await call(t.api(`/media/${mediaId}`), { method: 'DELETE', headers: owner.auth })).status,
        204,
      );
      assert.equal((await call(t.api(`/media/${mediaId}`), { headers: devA.auth })).status, 404);
    });
  });

  // The security review found these routes outside the matrix above (they were right; now proven).
  describe('variants, HLS, parts, retry and cancel', () => {
    let stranger: { auth: Auth };
    let devA: { auth: Auth };
    let devB: { auth: Auth };
    let mediaId: string;
    before(async () => {
      const owner = await t.user('owner-u3');
      stranger = await t.user('other-u4');
      devA = await t.device('cam-c', owner.id);
      devB = await t.device('cam-d');
      mediaId = await uploaded(devA.auth);
    });
    const ghostId = '00000000-0000-4000-8000-000000000000';
    const routes: [string, string, unknown?][] = [
      ['GET', '/variants/600'],
      ['GET', '/variants/600?mode=proxy'],
      ['GET', '/hls/master.m3u8'],
      ['GET', '/parts'],
      ['POST', '/parts', { partNumbers: [1] }],
      ['POST', '/retry-processing'],
      ['POST', '/cancel'],
    ];
    const at = (method: string, suffix: string, json: unknown, id: string, auth: Auth) =>
      call(t.api(`/media/${id}${suffix}`), { method, headers: auth, ...(json ? { json } : {}) });

    test('strangers get the same 404 as for no such media', async () => {
      for (const [method, suffix, json] of routes) {
        const ghost = await at(method, suffix, json, ghostId, stranger.auth);
        assert.equal(ghost.status, 404, `${method} ${suffix} for no such media`);
        for (const [who, auth] of [
          ['devB', devB.auth],
          ['stranger', stranger.auth],
        ] as const) {
          const res = await at(method, suffix, json, mediaId, auth);
          assert.equal(res.status, 404, `${who} ${method} ${suffix}: ${res.text}`);
          assert.deepEqual(
            { ...res.body.error, requestId: 0 },
            { ...ghost.body.error, requestId: 0 },
            `${who} ${suffix}`,
          );
        }
      }
    });

    test('no credentials get 401', async () => {
      for (const [method, suffix, json] of routes) {
        const anon = await at(method, suffix, json, mediaId, {});
        assert.equal(anon.status, 401, `anonymous ${method} ${suffix}`);
      }
    });

    test('the media itself is untouched by all of that', async () => {
      // The media itself is untouched by all of that (cancel and retry were refused to strangers).
      const after = await call(t.api(`/media/${mediaId}`), { headers: devA.auth });
      assert.match(after.body.status, /^(UPLOADED|PROCESSING|READY)$/);
    });
  });

  // Found by a security review: after a device changed owner, the previous owner still reached its
  // captures (fine) but the new owner reached them too, GPS included.
  test('a camera that changes hands keeps its earlier captures with the previous owner', async () => {
    const alice = await t.user('transfer-alice');
    const bob = await t.user('transfer-bob');
    const dev = await t.device('cam-sold', alice.id);
    const before = await uploaded(dev.auth);
    await t.server.database.pool.query('UPDATE devices SET owner_user_id = $1 WHERE id = $2', [
      bob.id,
      dev.id,
    ]);
    // The device-key cache hears of the change by NOTIFY: wait until a new capture is Bob's.
    let afterId = '';
    for (let i = 0; i < 50 && !afterId; i++) {
      const id = await uploaded(dev.auth);
      if ((await call(t.api(`/media/${id}`), { headers: bob.auth })).status === 200) afterId = id;
      else await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(afterId, 'captures after the transfer belong to the new owner');

    const get = (id: string, who: Auth) => call(t.api(`/media/${id}`), { headers: who });
    assert.equal((await get(before, alice.auth)).status, 200, 'the previous owner keeps earlier captures');
    assert.equal((await get(before, bob.auth)).status, 404, 'the new owner does not get them');
    assert.equal((await get(afterId, alice.auth)).status, 404, 'nor the previous owner the new ones');
    assert.equal((await get(before, dev.auth)).status, 200, 'the device still sees what it uploaded');

    const listed = async (url: string, who: Auth) =>
      ((await call(t.api(url), { headers: who })).body.items as { mediaId: string }[]).map((m) => m.mediaId);
    const bobsDevice = await listed(`/devices/${dev.id}/media`, bob.auth);
    assert.ok(
      bobsDevice.includes(afterId) && !bobsDevice.includes(before),
      'the device listing is per owner',
    );
    assert.equal((await call(t.api(`/devices/${dev.id}/media`), { headers: alice.auth })).status, 404);
    assert.ok((await listed('/users/me/media', alice.auth)).includes(before));
    assert.ok(!(await listed('/users/me/media', bob.auth)).includes(before));

    // The location follows the same rule.
    const row = (
      await t.server.database.pool.query(
        `SELECT m.owner_user_id, d.owner_user_id AS device_owner_user_id
         FROM media m JOIN devices d ON d.id = m.device_id WHERE m.id = $1`,
        [before],
      )
    ).rows[0] as { owner_user_id: string | null; device_owner_user_id: string | null };
    assert.equal(canSeeLocation({ kind: 'user', userId: alice.id }, row), true);
    assert.equal(canSeeLocation({ kind: 'user', userId: bob.id }, row), false);
  });

  test('a device can only upload as itself', async () => {
    const owner = await t.user('owner-u3');
    const devA = await t.device('cam-a', owner.id);
    const devB = await t.device('cam-b');
    const body = { fileName: 'n.jpg', mimeType: 'image/jpeg', bytes: JPEG.length };
    const asOther = await call(t.api('/media'), {
      method: 'POST',
      headers: devA.auth,
      json: { ...body, deviceId: devB.id },
    });
    assert.equal(asOther.status, 404);
  });

  test('a user uploads only for devices they own', async () => {
    const owner = await t.user('owner-u3');
    const devA = await t.device('cam-a', owner.id);
    const devB = await t.device('cam-b');
    const body = { fileName: 'n.jpg', mimeType: 'image/jpeg', bytes: JPEG.length };
    const userForOwn = await call(t.api('/media'), {
      method: 'POST',
      headers: owner.auth,
      json: { ...body, deviceId: devA.id },
    });
    assert.equal(userForOwn.status, 201);
    assert.equal(userForOwn.body.media.deviceId, devA.id);
    const userForOther = await call(t.api('/media'), {
      method: 'POST',
      headers: owner.auth,
      json: { ...body, deviceId: devB.id },
    });
    assert.equal(userForOther.status, 404);
  });

  test('bad credentials: unknown device key, revoked key, wrong JWT secret, expired JWT, malformed header → 401', async () => {
    const dev = await t.device();
    const { revokeDevice } = await import('../../src/auth/principals.ts');
    const revoked = await t.device();
    await revokeDevice(t.server.database.pool, revoked.id);
    const wrongSecret = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode('x'.repeat(40)));
    const expired = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(JWT_SECRET));
    // Signed with the right secret but without an expiry: it would never lapse.
    const noExpiry = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('u')
      .sign(new TextEncoder().encode(JWT_SECRET));
    const noneAlg = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"u"}').toString('base64url')}.`;
    const headers = [
      'Bearer mdk_unknown',
      revoked.auth.authorization!,
      `Bearer ${wrongSecret}`,
      `Bearer ${expired}`,
      `Bearer ${noExpiry}`,
      `Bearer ${noneAlg}`,
      'Basic abc',
      'Bearer',
      dev.auth.authorization!.toLowerCase().replace('bearer', 'Bearer  x'),
    ];
    for (const h of headers) {
      const res = await call(t.api(`/devices/${dev.id}/media`), { headers: { authorization: h } });
      assert.equal(res.status, 401, h);
      assert.equal(res.body.error.code, 'unauthorized');
    }
  });
});
