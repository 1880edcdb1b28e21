/**
 * Devices that their owners manage through the API (issue 18): list with last-seen time and usage,
 * create, rename, hand over, revoke, rotate the key with an overlap window, and claim a device by the
 * code it shows. Real server, real Postgres; every route in an authorization matrix.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { call, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';

let t: TestServer;
before(async () => {
  // A short cache would hide nothing here: changes reach it by NOTIFY; keep the default on.
  t = await startTestServer({ RATE_LIMIT_DEVICE_CLAIMS_PER_MINUTE: '4' });
});
after(async () => {
  await t?.close();
});

type Auth = Record<string, string>;
const bearer = (key: string): Auth => ({ authorization: `Bearer ${key}` });
/** A request only a valid device key passes: opening an upload session. */
const session = (auth: Auth) =>
  call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes: 10 },
  });

/** Polls until `check` holds (at most `ms`). */
async function eventually(ms: number, check: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(25);
  }
}

describe('devices an owner manages', () => {
  test('create (key shown once), list with last-seen time and usage, read, rename', async () => {
    const alice = await t.user('dev-alice');
    const created = await call(t.api('/devices'), {
      method: 'POST',
      headers: alice.auth,
      json: { name: 'porch' },
    });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.headers.get('cache-control'), 'no-store');
    const { device, apiKey } = created.body;
    assert.match(apiKey, /^mdk_/);
    assert.equal(device.ownerUserId, alice.id);
    assert.equal(device.lastSeenAt, null);
    assert.deepEqual(device.usage, { storedBytes: 0, openSessions: 0 });

    assert.equal((await session(bearer(apiKey))).status, 201);
    await eventually(
      5000,
      async () =>
        (await call(t.api(`/devices/${device.deviceId}`), { headers: alice.auth })).body.lastSeenAt !== null,
      'last seen recorded',
    );
    const listed = await call(t.api('/devices'), { headers: alice.auth });
    assert.equal(listed.status, 200);
    const mine = listed.body.items.find((d: { deviceId: string }) => d.deviceId === device.deviceId);
    assert.deepEqual(mine.usage, { storedBytes: 10, openSessions: 1 });

    const me = await call(t.api('/devices/me'), { headers: bearer(apiKey) });
    assert.equal(me.status, 200);
    assert.equal(me.body.deviceId, device.deviceId);

    const renamed = await call(t.api(`/devices/${device.deviceId}`), {
      method: 'PATCH',
      headers: alice.auth,
      json: { name: 'front porch' },
    });
    assert.equal(renamed.status, 200, renamed.text);
    assert.equal(renamed.body.name, 'front porch');
  });

  test('bad input is a 400 naming the problem and changes nothing', async () => {
    const bob = await t.user('dev-bob');
    const { body } = await call(t.api('/devices'), {
      method: 'POST',
      headers: bob.auth,
      json: { name: 'cam' },
    });
    const id = body.device.deviceId as string;
    for (const json of [
      {},
      { name: '' },
      { name: 'x'.repeat(201) },
      { name: 'ok', extra: 1 },
      { ownerUserId: '' },
    ]) {
      const res = await call(t.api(`/devices/${id}`), { method: 'PATCH', headers: bob.auth, json });
      assert.equal(res.status, 400, JSON.stringify(json));
      assert.equal(res.body.error.code, 'validation_failed');
    }
    const bad = await call(t.api(`/devices/${id}/rotate-key`), {
      method: 'POST',
      headers: bob.auth,
      json: { overlapSeconds: -1 },
    });
    assert.equal(bad.status, 400);
    assert.equal((await call(t.api('/devices/not-a-uuid'), { headers: bob.auth })).status, 400);
    const still = await call(t.api(`/devices/${id}`), { headers: bob.auth });
    assert.equal(still.body.name, 'cam');
    assert.equal(still.body.keyRotatedAt, null);
  });

  test('a rotated key overlaps: the old key works until the window ends, then not', async () => {
    const carol = await t.user('dev-carol');
    const { body } = await call(t.api('/devices'), {
      method: 'POST',
      headers: carol.auth,
      json: { name: 'c' },
    });
    const id = body.device.deviceId as string;
    const oldKey = body.apiKey as string;
    assert.equal((await session(bearer(oldKey))).status, 201); // cached now

    // The device rotates its own key (as the agent would), with a 2 s overlap.
    const rotated = await call(t.api('/devices/me/rotate-key'), {
      method: 'POST',
      headers: bearer(oldKey),
      json: { overlapSeconds: 2 },
    });
    assert.equal(rotated.status, 200, rotated.text);
    const newKey = rotated.body.apiKey as string;
    assert.notEqual(newKey, oldKey);
    assert.ok(rotated.body.device.previousKeyExpiresAt);
    assert.equal((await session(bearer(newKey))).status, 201, 'the new key works at once');
    assert.equal((await session(bearer(oldKey))).status, 201, 'the old key still works in the overlap');
    await eventually(10_000, async () => (await session(bearer(oldKey))).status === 401, 'old key ends');
    assert.equal((await session(bearer(newKey))).status, 201);

    // The owner rotates with no overlap: the key just replaced stops at once (the cache hears of it).
    const again = await call(t.api(`/devices/${id}/rotate-key`), {
      method: 'POST',
      headers: carol.auth,
      json: { overlapSeconds: 0 },
    });
    assert.equal(again.status, 200);
    assert.equal(again.body.device.previousKeyExpiresAt, null);
    await eventually(
      2000,
      async () => (await session(bearer(newKey))).status === 401,
      'replaced key refused',
    );
    assert.equal((await session(bearer(again.body.apiKey))).status, 201);
  });

  test('revoke stops every key at once, is idempotent, and a revoked device cannot change', async () => {
    const dan = await t.user('dev-dan');
    const { body } = await call(t.api('/devices'), {
      method: 'POST',
      headers: dan.auth,
      json: { name: 'd' },
    });
    const id = body.device.deviceId as string;
    const key = body.apiKey as string;
    const rotated = await call(t.api(`/devices/${id}/rotate-key`), { method: 'POST', headers: dan.auth });
    assert.equal(rotated.status, 200);
    assert.equal((await session(bearer(key))).status, 201, 'default overlap keeps the old key');
    const revoked = await call(t.api(`/devices/${id}/revoke`), { method: 'POST', headers: dan.auth });
    assert.equal(revoked.status, 200);
    assert.ok(revoked.body.revokedAt);
    await eventually(2000, async () => (await session(bearer(key))).status === 401, 'old key refused');
    assert.equal((await session(bearer(rotated.body.apiKey))).status, 401);
    assert.equal(
      (await call(t.api(`/devices/${id}/revoke`), { method: 'POST', headers: dan.auth })).status,
      200,
    );
    const rename = await call(t.api(`/devices/${id}`), {
      method: 'PATCH',
      headers: dan.auth,
      json: { name: 'z' },
    });
    assert.equal(rename.status, 409);
    assert.equal(
      (await call(t.api(`/devices/${id}/rotate-key`), { method: 'POST', headers: dan.auth })).status,
      409,
    );
    const listed = await call(t.api('/devices'), { headers: dan.auth });
    assert.equal(listed.body.items.length, 0, 'revoked devices are not listed by default');
    const all = await call(t.api('/devices?includeRevoked=true'), { headers: dan.auth });
    assert.equal(all.body.items.length, 1);
  });

  test('handing a device over: the new owner manages it and gets its new captures', async () => {
    const erin = await t.user('dev-erin');
    const frank = await t.user('dev-frank');
    const { body } = await call(t.api('/devices'), {
      method: 'POST',
      headers: erin.auth,
      json: { name: 'e' },
    });
    const id = body.device.deviceId as string;
    const key = body.apiKey as string;
    const before = await session(bearer(key));
    const moved = await call(t.api(`/devices/${id}`), {
      method: 'PATCH',
      headers: erin.auth,
      json: { ownerUserId: frank.id },
    });
    assert.equal(moved.status, 200);
    assert.equal(moved.body.ownerUserId, frank.id);
    assert.equal((await call(t.api(`/devices/${id}`), { headers: erin.auth })).status, 404);
    assert.equal((await call(t.api(`/devices/${id}`), { headers: frank.auth })).status, 200);
    let after = '';
    await eventually(
      5000,
      async () => {
        const s = await session(bearer(key));
        after = s.body.mediaId;
        return (await call(t.api(`/media/${after}`), { headers: frank.auth })).status === 200;
      },
      'new captures belong to the new owner',
    );
    assert.equal((await call(t.api(`/media/${before.body.mediaId}`), { headers: frank.auth })).status, 404);
    assert.equal((await call(t.api(`/media/${before.body.mediaId}`), { headers: erin.auth })).status, 200);
  });
});

describe('claiming a device by the code it shows', () => {
  test('start → pending → the owner types the code → the device fetches its key once', async () => {
    const gina = await t.user('dev-gina');
    const start = await call(t.api('/device-claims'), { method: 'POST', json: { name: 'garden cam' } });
    assert.equal(start.status, 201, start.text);
    const { deviceCode, userCode } = start.body;
    assert.match(userCode, /^[B-DF-HJ-NP-TV-XZ]{4}-[B-DF-HJ-NP-TV-XZ]{4}$/);
    const poll = () => call(t.api('/device-claims/token'), { method: 'POST', json: { deviceCode } });
    const pending = await poll();
    assert.equal(pending.status, 202);
    assert.equal(pending.body.status, 'pending');
    assert.equal(pending.headers.get('retry-after'), '5');

    // Typed in lower case without the dash: still the code.
    const typed = userCode.replace('-', ' ').toLowerCase();
    const claimed = await call(t.api('/devices/claim'), {
      method: 'POST',
      headers: gina.auth,
      json: { userCode: typed },
    });
    assert.equal(claimed.status, 201, claimed.text);
    assert.equal(claimed.body.name, 'garden cam');
    assert.equal(claimed.body.ownerUserId, gina.id);
    // The code is spent: another user cannot claim it too.
    const hal = await t.user('dev-hal');
    const twice = await call(t.api('/devices/claim'), {
      method: 'POST',
      headers: hal.auth,
      json: { userCode },
    });
    assert.equal(twice.status, 404);

    const got = await poll();
    assert.equal(got.status, 200, got.text);
    assert.equal(got.body.deviceId, claimed.body.deviceId);
    assert.equal(got.body.ownerUserId, gina.id);
    const s = await session(bearer(got.body.apiKey));
    assert.equal(s.status, 201);
    assert.equal((await call(t.api(`/media/${s.body.mediaId}`), { headers: gina.auth })).status, 200);
    const again = await poll();
    assert.equal(again.status, 410, 'the key is delivered once');
    assert.equal(again.body.error.code, 'claim_expired');
  });

  describe('codes that claim nothing', () => {
    let ivy: { auth: Record<string, string> };
    before(async () => {
      ivy = await t.user('dev-ivy');
    });

    test('unknown user codes are 404', async () => {
      for (const userCode of ['BCDF-GHJK', 'AAAA-AAAA', 'short']) {
        const res = await call(t.api('/devices/claim'), {
          method: 'POST',
          headers: ivy.auth,
          json: { userCode },
        });
        assert.equal(res.status, 404, userCode);
      }
    });

    test('an expired code is 404 to the owner and 410 to the device', async () => {
      const start = await call(t.api('/device-claims'), { method: 'POST', json: { name: 'late' } });
      assert.equal(start.status, 201);
      await t.server.database.pool.query(
        `UPDATE device_claims SET expires_at = now() - interval '1 second' WHERE user_code = $1`,
        [start.body.userCode.replace('-', '')],
      );
      const late = await call(t.api('/devices/claim'), {
        method: 'POST',
        headers: ivy.auth,
        json: { userCode: start.body.userCode },
      });
      assert.equal(late.status, 404);
      const poll = await call(t.api('/device-claims/token'), {
        method: 'POST',
        json: { deviceCode: start.body.deviceCode },
      });
      assert.equal(poll.status, 410);
    });

    test('a device code nobody issued is 404, and no device was made', async () => {
      const ghost = await call(t.api('/device-claims/token'), {
        method: 'POST',
        json: { deviceCode: 'mdc_nope' },
      });
      assert.equal(ghost.status, 404);
      assert.equal((await call(t.api('/devices'), { headers: ivy.auth })).body.items.length, 0);
    });
  });

  test('`mediary claim` prints the code, waits for the owner, and saves the key (0600)', async () => {
    const owner = await t.user('dev-claim-cli');
    const keyFile = path.join(await tempDir(), 'conf', 'key');
    const child = spawn(
      process.execPath,
      ['bin/mediary.mjs', 'claim', '--server', t.base, '--name', 'porch cam', '--key-file', keyFile],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    let code = '';
    await eventually(
      60_000,
      async () => {
        code = /Claim code: ([A-Z]{4}-[A-Z]{4})/.exec(out)?.[1] ?? '';
        return code !== '';
      },
      'the code is printed',
    );
    const claimed = await call(t.api('/devices/claim'), {
      method: 'POST',
      headers: owner.auth,
      json: { userCode: code },
    });
    assert.equal(claimed.status, 201, claimed.text);
    assert.equal(await exited, 0, out);
    assert.match(out, /Key saved to/);
    assert.equal((await stat(keyFile)).mode & 0o777, 0o600);
    const key = (await readFile(keyFile, 'utf8')).trim();
    assert.ok(!out.includes(key), 'the key is not printed');
    const s = await session(bearer(key));
    assert.equal(s.status, 201);
    assert.equal((await call(t.api(`/media/${s.body.mediaId}`), { headers: owner.auth })).status, 200);
  });

  test('starting claims is rate-limited per address', async () => {
    let status = 0;
    for (let i = 0; i < 6 && status !== 429; i++) {
      status = (await call(t.api('/device-claims'), { method: 'POST', json: { name: `n${i}` } })).status;
    }
    assert.equal(status, 429);
  });
});

describe('authorization matrix: device routes × owner, other user, the device, another device, anonymous', () => {
  let owner: Awaited<ReturnType<TestServer['user']>>;
  let other: Awaited<ReturnType<TestServer['user']>>;
  let id: string;
  let self: Auth;
  let selfAuth: Auth;
  let principals: Record<string, Auth>;
  let routes: [string, string, unknown?][];
  let expected: Record<string, number[]>;
  /** Each principal in turn over every route (order matters: the device rotates, the owner revokes last). */
  async function check(who: string) {
    const got: number[] = [];
    for (const [method, path, json] of routes) {
      const auth = who === 'self' ? selfAuth : principals[who]!;
      const res = await call(t.api(path), { method, headers: auth, ...(json ? { json } : {}) });
      if (res.status >= 400) assert.equal(typeof res.body?.error?.code, 'string', `${who} ${method} ${path}`);
      if (who === 'self' && path.endsWith('rotate-key') && res.status === 200)
        selfAuth = bearer(res.body.apiKey);
      got.push(res.status);
    }
    assert.deepEqual(got, expected[who], who);
  }

  before(async () => {
    owner = await t.user('mx-owner');
    other = await t.user('mx-other');
    const made = await call(t.api('/devices'), { method: 'POST', headers: owner.auth, json: { name: 'm' } });
    id = made.body.deviceId ?? made.body.device.deviceId;
    self = bearer(made.body.apiKey);
    const otherDevice = await t.device('mx-dev-b', other.id);
    principals = {
      owner: owner.auth,
      other: other.auth,
      self,
      devB: otherDevice.auth,
      anon: {},
    };
    routes = [
      ['GET', `/devices/${id}`],
      ['PATCH', `/devices/${id}`, { name: 'renamed' }],
      ['POST', `/devices/${id}/rotate-key`, { overlapSeconds: 600 }],
      ['GET', '/devices'],
      ['POST', '/devices', { name: 'new' }],
      ['GET', `/devices/${id}/retention/preview`],
      ['POST', `/devices/${id}/revoke`],
    ];
    expected = {
      //      get  patch rotate list create preview revoke
      other: [404, 404, 404, 200, 201, 404, 404],
      devB: [404, 404, 404, 403, 403, 404, 404],
      anon: [401, 401, 401, 401, 401, 401, 401],
      self: [200, 404, 200, 403, 403, 404, 404],
      owner: [200, 200, 200, 200, 201, 200, 200],
    };
    selfAuth = self;
  });

  test('another user gets 404 for the device and manages only its own', async () => {
    await check('other');
  });

  test('another device gets 404 for the device and 403 for the list and create', async () => {
    await check('devB');
  });

  test('anonymous gets 401 everywhere', async () => {
    await check('anon');
  });

  test('the device reads and rotates itself, nothing more', async () => {
    await check('self');
  });

  test('the owner manages the device, revoking it last', async () => {
    await check('owner');
  });

  test('nothing the strangers sent changed the device', async () => {
    const final = await call(t.api(`/devices/${id}?`), { headers: owner.auth });
    assert.equal(final.body.name, 'renamed');
    assert.ok(final.body.revokedAt, 'revoked by the owner, last');
  });
});
