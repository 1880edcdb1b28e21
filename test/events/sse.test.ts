/**
 * Live status events over SSE (issue 20): the events outbox written by triggers in the state
 * change's own transaction, streamed per principal and per media, resumable with Last-Event-ID,
 * authenticated like reads (header, or a short-lived stream token for EventSource), and delivered
 * across API instances through Postgres.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { MediaryClient } from '../../src/client/api.ts';
import { currentCursor, deleteOlderThan, readAfter } from '../../src/events/repo.ts';
import { fixture } from '../helpers/files.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { upload, waitFor } from '../processing/helpers.ts';
import { openSse, type SseStream } from './sse-client.ts';

const JPEG = fixture('cameras/Nikon_D70.jpg');

let t: TestServer;
const streams: SseStream[] = [];
const sse = async (url: string, headers: Record<string, string> = {}) => {
  const s = await openSse(url, headers);
  streams.push(s);
  return s;
};
before(async () => {
  t = await startTestServer({ EVENTS_HEARTBEAT_SECONDS: '1' });
});
after(async () => {
  for (const s of streams) s.close();
  await t?.close();
});

describe('events over SSE', () => {
  describe('one media', () => {
    let cam: Awaited<ReturnType<TestServer['device']>>;
    let s: Awaited<ReturnType<typeof call>>;
    let id: string;
    let stream: SseStream;
    let seen: SseStream['messages'];

    test('the stream opens with the current status, which moves no Last-Event-ID', async () => {
      cam = await t.device('sse-cam');
      s = await call(t.api('/media'), {
        method: 'POST',
        headers: cam.auth,
        json: { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes: JPEG.length },
      });
      assert.equal(s.status, 201, s.text);
      id = s.body.mediaId as string;
      stream = await sse(t.api(`/media/${id}/events`), cam.auth);
      assert.equal(stream.status, 200);
      assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal(stream.headers.get('x-content-type-options'), 'nosniff');
      const first = await stream.until(() => true);
      assert.equal(first.event, 'media.status');
      assert.equal(first.data.status, 'PENDING');
      assert.equal(first.id, undefined, 'the snapshot moves no Last-Event-ID');
    });

    test('then each change follows, once each, up to READY', async () => {
      const put = await call(s.body.upload.url, {
        method: 'PUT',
        headers: { 'content-type': 'image/jpeg' },
        body: JPEG,
      });
      assert.equal(put.status, 200, put.text);
      const done = await call(t.api(`/media/${id}/complete`), { method: 'POST', headers: cam.auth });
      assert.equal(done.status, 200, done.text);
      const ready = await stream.until((m) => m.event === 'media.ready');
      assert.equal(ready.data.data.status, 'READY');
      assert.equal(ready.data.data.mediaId, id);
      seen = stream.messages.filter((m) => m.id !== undefined);
      const types = seen.map((m) => m.event);
      assert.equal(types[0], 'media.uploaded');
      assert.ok(types.includes('media.processing'), types.join());
      assert.equal(types.at(-1), 'media.ready');
      assert.equal(new Set(seen.map((m) => m.id)).size, seen.length, 'each event once');
      for (const m of seen) assert.equal(m.data.id, m.id);
    });

    test('Last-Event-ID resumes after that event', async () => {
      // Resuming after the first event replays exactly the rest, in the same order.
      const resumed = await sse(t.api(`/media/${id}/events`), { ...cam.auth, 'last-event-id': seen[0]!.id! });
      await resumed.until((m) => m.event === 'media.ready');
      assert.deepEqual(
        resumed.messages.filter((m) => m.id !== undefined).map((m) => m.id),
        seen.slice(1).map((m) => m.id),
      );
    });
  });

  test('all of a principal’s media: own and circle-shared, never another’s', async () => {
    const alice = await t.user('sse-alice');
    const bob = await t.user('sse-bob');
    const carol = await t.user('sse-carol');
    const circle = await call(t.api('/circles'), {
      method: 'POST',
      headers: alice.auth,
      json: { name: 'fam' },
    });
    assert.equal(circle.status, 201, circle.text);
    const member = await call(t.api(`/circles/${circle.body.circleId}/members`), {
      method: 'POST',
      headers: alice.auth,
      json: { userId: bob.id },
    });
    assert.ok(member.status < 300, member.text);
    const aliceStream = await sse(t.api('/events'), alice.auth);
    const bobStream = await sse(t.api('/events'), bob.auth);
    const carolStream = await sse(t.api('/events'), carol.auth);
    const shared = await upload(t, alice.auth, JPEG, 'image/jpeg', { circleId: circle.body.circleId });
    const own = await upload(t, carol.auth, JPEG);
    await aliceStream.until((m) => m.event === 'media.ready' && m.data.data.mediaId === shared.id);
    await bobStream.until((m) => m.event === 'media.ready' && m.data.data.mediaId === shared.id);
    await carolStream.until((m) => m.event === 'media.ready' && m.data.data.mediaId === own.id);
    await waitFor(t, carol.auth, own.id, ['READY']);
    const ids = (s: SseStream) => new Set(s.messages.map((m) => m.data.data?.mediaId));
    assert.ok(!ids(carolStream).has(shared.id), 'carol is in no circle of alice');
    assert.ok(!ids(aliceStream).has(own.id) && !ids(bobStream).has(own.id), 'carol’s media stay hers');
  });

  test('auth: 401 without credentials, another’s media is 404, a stream token works and cannot be forged', async () => {
    const cam = await t.device('sse-cam-2');
    const other = await t.user('sse-other');
    const { id } = await upload(t, cam.auth, JPEG);
    const none = await sse(t.api('/events'));
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'unauthorized');
    const foreign = await sse(t.api(`/media/${id}/events`), other.auth);
    assert.equal(foreign.status, 404);
    assert.equal(foreign.body.error.code, 'not_found');
    const badLast = await sse(t.api('/events'), { ...cam.auth, 'last-event-id': 'x1' });
    assert.equal(badLast.status, 400);

    const minted = await call(t.api('/events/token'), { method: 'POST', headers: cam.auth });
    assert.equal(minted.status, 200, minted.text);
    assert.ok(!minted.body.token.includes(cam.key), 'the token is not the credential');
    const byToken = await sse(t.api(`/media/${id}/events?token=${encodeURIComponent(minted.body.token)}`));
    assert.equal(byToken.status, 200);
    assert.equal((await byToken.until(() => true)).event, 'media.status');
    const [payload, sig] = minted.body.token.split('.');
    const forged = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), i: 'someone-else' }),
    ).toString('base64url');
    const tampered = await sse(t.api(`/events?token=${forged}.${sig}`));
    assert.equal(tampered.status, 403);
    assert.equal(tampered.body.error.code, 'signature_invalid');

    // A revoked device's stream ends, and its token opens no new one.
    await t.server.database.pool.query('UPDATE devices SET revoked_at = now() WHERE id = $1', [cam.id]);
    await byToken.until(() => false, 10_000).catch((err: Error) => assert.match(err.message, /stream ended/));
    const again = await sse(t.api(`/events?token=${encodeURIComponent(minted.body.token)}`));
    assert.equal(again.status, 401);
  });

  test('a stream on another API instance gets events written through this one (Postgres, not memory)', async () => {
    const t2 = await startTestServer({ DATABASE_URL: t.databaseUrl, WORKER_ENABLED: 'false' });
    try {
      const alice = await t.user('sse-multi');
      const remote = await openSse(t2.api('/events'), alice.auth);
      streams.push(remote);
      const { id } = await upload(t, alice.auth, JPEG);
      await remote.until((m) => m.event === 'media.ready' && m.data.data.mediaId === id);
    } finally {
      await t2.close();
    }
  });
});

describe('the SDK', () => {
  test('waitFor listens to the media’s event stream instead of polling', async () => {
    const alice = await t.user('sdk-wait');
    const s = await call(t.api('/media'), {
      method: 'POST',
      headers: alice.auth,
      json: { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes: JPEG.length },
    });
    assert.equal(s.status, 201, s.text);
    const id = s.body.mediaId as string;
    const put = await call(s.body.upload.url, {
      method: 'PUT',
      headers: { 'content-type': 'image/jpeg' },
      body: JPEG,
    });
    assert.equal(put.status, 200, put.text);
    let statusReads = 0;
    let streamed = false;
    const client = new MediaryClient({
      server: t.base,
      token: alice.token,
      fetch: (input, init) => {
        const url = input instanceof Request ? input.url : input.toString();
        if (url.endsWith('/status')) statusReads++;
        if (url.endsWith('/events')) streamed = true;
        return fetch(input, init);
      },
    });
    // A polling client would read the status every 20 ms while the media stays PENDING.
    const waiting = client.waitFor(id, { intervalMs: 20, maxIntervalMs: 20 });
    await sleep(1000);
    const whileQuiet = statusReads;
    const done = await call(t.api(`/media/${id}/complete`), { method: 'POST', headers: alice.auth });
    assert.equal(done.status, 200, done.text);
    const final = await waiting;
    assert.equal(final.status, 'READY');
    assert.ok(streamed, 'the stream was opened');
    assert.equal(whileQuiet, 1, 'one read while nothing changed');
  });

  test('waitFor polls when a proxy holds the event stream back (never hands it over)', async () => {
    const alice = await t.user('sdk-wait-proxy');
    const { id } = await upload(t, alice.auth, JPEG);
    let held = 0;
    const client = new MediaryClient({
      server: t.base,
      token: alice.token,
      fetch: (input, init) => {
        const url = input instanceof Request ? input.url : input.toString();
        if (!url.endsWith('/events')) return fetch(input, init);
        // A buffering proxy: no answer until the stream ends, which it never does.
        held++;
        return new Promise<Response>((_, reject) =>
          init?.signal?.addEventListener('abort', () => reject(new Error('aborted'))),
        );
      },
    });
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('waitFor hung behind the held stream')), 60_000);
    });
    try {
      const final = await Promise.race([client.waitFor(id, { intervalMs: 20, maxIntervalMs: 200 }), stuck]);
      assert.equal(final.status, 'READY');
    } finally {
      clearTimeout(timer);
    }
    assert.equal(held, 1, 'the stream was asked for');
  });
});

describe('the outbox', () => {
  describe('transactions', () => {
    // Two owners: usage counters are per owner, and one owner's rows would make c2 wait for c1.
    let a: { id: string };
    let b: { id: string };
    let aliceScope: { kind: 'user'; userId: string };
    let bobScope: { kind: 'user'; userId: string };
    let c1: pg.Client;
    let c2: pg.Client;
    const pool = () => t.server.database.pool;
    before(async () => {
      const alice = await t.user('outbox-alice');
      const bob = await t.user('outbox-bob');
      a = await upload(t, alice.auth, JPEG);
      b = await upload(t, bob.auth, JPEG);
      await waitFor(t, alice.auth, a.id, ['READY']);
      await waitFor(t, bob.auth, b.id, ['READY']);
      aliceScope = { kind: 'user', userId: alice.id } as const;
      bobScope = { kind: 'user', userId: bob.id } as const;
      c1 = new pg.Client({ connectionString: t.databaseUrl });
      c2 = new pg.Client({ connectionString: t.databaseUrl });
      await c1.connect();
      await c2.connect();
    });
    after(async () => {
      await c1?.end();
      await c2?.end();
    });

    test('a rolled-back change leaves no event', async () => {
      const count = async () =>
        Number(
          (await pool().query('SELECT count(*) AS n FROM events WHERE media_id = $1', [a.id])).rows[0].n,
        );
      const before = await count();
      await c1.query('BEGIN');
      await c1.query(`UPDATE media SET status = 'DELETED', deleted_at = now() WHERE id = $1`, [a.id]);
      await c1.query('ROLLBACK');
      assert.equal(await count(), before, 'no event for a change that rolled back');
    });

    test('an event waits for older transactions still running', async () => {
      const from = await currentCursor(pool());
      // The earlier transaction draws the smaller id but commits last.
      await c1.query('BEGIN');
      await c1.query(`UPDATE media SET status = 'DELETED', deleted_at = now() WHERE id = $1`, [a.id]);
      await c2.query(`UPDATE media SET status = 'DELETED', deleted_at = now() WHERE id = $1`, [b.id]);
      const early = await readAfter(pool(), bobScope, from);
      assert.deepEqual(early.events, [], 'b’s event is held while a’s older transaction runs');
      assert.equal(early.more, true);
      await c1.query('COMMIT');
      const forAlice = await readAfter(pool(), aliceScope, from);
      const forBob = await readAfter(pool(), bobScope, from);
      assert.deepEqual(
        forAlice.events.map((e) => [e.type, e.mediaId]),
        [['media.deleted', a.id]],
      );
      assert.deepEqual(
        forBob.events.map((e) => [e.type, e.mediaId]),
        [['media.deleted', b.id]],
      );
      assert.equal(forBob.more, false);
      assert.ok(BigInt(forAlice.events[0]!.id) < BigInt(forBob.events[0]!.id), 'ids drawn in that order');
      assert.deepEqual((await readAfter(pool(), bobScope, forBob.cursor)).events, []);
    });
  });

  test('retention deletes old events only', async () => {
    const pool = t.server.database.pool;
    const { rows } = await pool.query<{ id: string }>(
      `INSERT INTO events (type, owner_user_id, payload, created_at)
       VALUES ('post.deleted', 'retention-user', '{}', now() - interval '9 days'),
              ('post.deleted', 'retention-user', '{}', now() - interval '1 day') RETURNING id`,
    );
    assert.ok((await deleteOlderThan(pool, 7)) >= 1);
    const left = await pool.query('SELECT id FROM events WHERE id = ANY($1::bigint[])', [
      rows.map((r) => r.id),
    ]);
    assert.deepEqual(
      left.rows.map((r) => r.id),
      [rows[1]!.id],
    );
  });
});
