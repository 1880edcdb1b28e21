/**
 * Per-device retention (issue 18): an owner sets `retentionDays` on a camera (PATCH /devices/{id}),
 * previews what would go (GET /devices/{id}/retention/preview, a dry run that changes nothing),
 * and the retention job deletes the expired captures through the deletion use case (objects
 * included). Kept: captures on a post, captures whose arrival is recent even if the camera's clock
 * says they are old, other devices' captures. Bad input is a 400, others' devices a 404.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLogger } from '../../src/log.ts';
import { applyDeviceRetention } from '../../src/operations/device-retention.ts';
import { createStore } from '../../src/storage/factory.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { PublicUrls } from '../../src/http/urls.ts';
import { fixture } from '../helpers/files.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { waitFor } from '../processing/helpers.ts';
import { uploadImage } from './helpers.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer({
    SWEEP_INTERVAL_SECONDS: '0',
    RETENTION_INTERVAL_SECONDS: '0', // the test runs the job
    DELETION_DRAIN_INTERVAL_SECONDS: '0',
  });
});
after(async () => {
  await t?.close();
});

const DAY = 86_400_000;
const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();

test('an owner sets a device retention, previews it, and the job deletes only expired, unpinned captures', async () => {
  const pool = t.server.database.pool;
  const store = createStore(t.config, 'local', new PublicUrls(new UrlSigner('unused'), t.config.publicUrl));
  const alice = await t.user('ret-alice');
  const bob = await t.user('ret-bob');
  const created = await call(t.api('/devices'), {
    method: 'POST',
    headers: alice.auth,
    json: { name: 'yard' },
  });
  assert.equal(created.status, 201, created.text);
  const deviceId = created.body.device.deviceId as string;
  assert.equal(created.body.device.retentionDays, null);
  const cam = { authorization: `Bearer ${created.body.apiKey}` };
  const other = await t.device('other-cam', alice.id);

  const capture = async (auth: Record<string, string>, messageId: string, capturedAgo: number) => {
    const id = await uploadImage(t, auth, fixture('cameras/Canon_40D.jpg'), {
      messageId,
      capturedAt: iso(capturedAgo),
    });
    assert.equal((await waitFor(t, auth, id, ['READY', 'FAILED'], 120_000)).status, 'READY');
    return id;
  };
  const expired = await capture(cam, 'expired', 10 * DAY);
  const onPost = await capture(cam, 'on-post', 10 * DAY);
  const recent = await capture(cam, 'recent', 2 * DAY);
  const wrongClock = await capture(cam, 'wrong-clock', 3650 * DAY); // arrived today
  const otherDevice = await capture(other.auth, 'other', 10 * DAY);
  // Test set-up: these arrived when their camera says they were taken.
  await pool.query(`UPDATE media SET created_at = captured_at WHERE id = ANY($1)`, [
    [expired, onPost, recent, otherDevice],
  ]);
  const post = await call(t.api('/posts'), {
    method: 'POST',
    headers: alice.auth,
    json: { mediaIds: [onPost] },
  });
  assert.equal(post.status, 201, post.text);

  // Bad input and other people.
  for (const retentionDays of [-1, 1.5, 'seven', 100_000, [7, 8]]) {
    const bad = await call(t.api(`/devices/${deviceId}`), {
      method: 'PATCH',
      headers: alice.auth,
      json: { retentionDays },
    });
    assert.equal(bad.status, 400, `${JSON.stringify(retentionDays)}: ${bad.text}`);
    assert.equal(bad.body.error.code, 'validation_failed');
  }
  for (const auth of [bob.auth, cam]) {
    const patch = await call(t.api(`/devices/${deviceId}`), {
      method: 'PATCH',
      headers: auth,
      json: { retentionDays: 1 },
    });
    assert.equal(patch.status, 404);
    const preview = await call(t.api(`/devices/${deviceId}/retention/preview`), { headers: auth });
    assert.equal(preview.status, 404);
  }
  const badPreview = await call(t.api(`/devices/${deviceId}/retention/preview?retentionDays=0`), {
    headers: alice.auth,
  });
  assert.equal(badPreview.status, 400);

  // No retention yet: nothing would go.
  const none = await call(t.api(`/devices/${deviceId}/retention/preview`), { headers: alice.auth });
  assert.equal(none.status, 200, none.text);
  assert.deepEqual(
    { ...none.body, deviceId: undefined },
    {
      deviceId: undefined,
      retentionDays: null,
      cutoff: null,
      count: 0,
      bytes: 0,
      kept: 0,
      items: [],
    },
  );
  // Trying a value before setting it.
  const tryout = await call(t.api(`/devices/${deviceId}/retention/preview?retentionDays=30`), {
    headers: alice.auth,
  });
  assert.equal(tryout.body.retentionDays, 30);
  assert.equal(tryout.body.count, 0);

  const set = await call(t.api(`/devices/${deviceId}`), {
    method: 'PATCH',
    headers: alice.auth,
    json: { retentionDays: 7 },
  });
  assert.equal(set.status, 200, set.text);
  assert.equal(set.body.retentionDays, 7);
  assert.equal(set.body.name, 'yard', 'nothing else changed');

  const preview = await call(t.api(`/devices/${deviceId}/retention/preview`), { headers: alice.auth });
  assert.equal(preview.status, 200);
  assert.equal(preview.body.retentionDays, 7);
  assert.equal(preview.body.count, 1);
  assert.equal(preview.body.kept, 1, 'the capture on a post is kept');
  assert.deepEqual(
    preview.body.items.map((m: { mediaId: string }) => m.mediaId),
    [expired],
  );
  assert.ok(preview.body.bytes > 0);
  const again = await call(t.api(`/devices/${deviceId}/retention/preview`), { headers: alice.auth });
  assert.deepEqual(again.body.items, preview.body.items, 'the preview changed nothing');

  const expiredKeys = await t.server.media.deletion.outbox.objectKeys(expired);
  const deleted = await applyDeviceRetention(pool, t.server.media, createLogger('silent'));
  assert.deepEqual([...deleted], [[deviceId, 1]]);
  assert.equal((await call(t.api(`/media/${expired}`), { headers: cam })).status, 404);
  for (const k of expiredKeys) assert.equal(await store.stat(k), undefined, `${k} removed`);
  for (const id of [onPost, recent, wrongClock]) {
    assert.equal((await call(t.api(`/media/${id}/status`), { headers: cam })).body.status, 'READY', id);
  }
  assert.equal(
    (await call(t.api(`/media/${otherDevice}/status`), { headers: other.auth })).body.status,
    'READY',
  );
  const stillPosted = await call(t.api(`/posts/${post.body.postId}`), { headers: alice.auth });
  assert.deepEqual(
    stillPosted.body.media.map((m: { mediaId: string }) => m.mediaId),
    [onPost],
  );

  // Idempotent: a second run finds nothing; clearing the retention keeps everything.
  assert.equal((await applyDeviceRetention(pool, t.server.media, createLogger('silent'))).size, 0);
  const cleared = await call(t.api(`/devices/${deviceId}`), {
    method: 'PATCH',
    headers: alice.auth,
    json: { retentionDays: 0 },
  });
  assert.equal(cleared.body.retentionDays, null);
  assert.equal((await applyDeviceRetention(pool, t.server.media, createLogger('silent'))).size, 0);
  assert.equal((await call(t.api(`/media/${recent}/status`), { headers: cam })).body.status, 'READY');
});
