/**
 * Signed webhooks (issue 20): subscriptions, delivery from the `webhook` queue verified by the
 * off-the-shelf `standardwebhooks` verifier, the delivery log, retries, disabling after sustained
 * failure, manual redelivery, a receiver that never answers, and the SSRF guard.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { isForbiddenAddress } from '../../src/webhooks/ssrf.ts';
import { dispatchEvents, settleUnmatchedEvents } from '../../src/webhooks/repo.ts';
import { sendWebhook } from '../../src/webhooks/sender.ts';
import { fixture } from '../helpers/files.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { upload, waitFor } from '../processing/helpers.ts';

const JPEG = fixture('cameras/Nikon_D70.jpg');

interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** A local receiver; `mode` per path decides the answer. */
let receiver: Server;
let receiverUrl: string;
const received: Received[] = [];
const modes = new Map<string, 'ok' | 'fail' | 'hang'>();
const hanging: ServerResponse[] = [];

let t: TestServer;
before(async () => {
  receiver = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({
        path,
        headers: req.headers as Record<string, string>,
        body: Buffer.concat(chunks).toString(),
      });
      const mode = modes.get(path) ?? 'ok';
      if (mode === 'hang') return void hanging.push(res);
      res.writeHead(mode === 'ok' ? 200 : 500).end(mode === 'ok' ? 'thanks' : 'x'.repeat(100_000));
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const addr = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  t = await startTestServer({
    WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
    WEBHOOK_RETRY_DELAY_SECONDS: '0',
    WEBHOOK_MAX_ATTEMPTS: '2',
    WEBHOOK_DISABLE_AFTER_FAILURES: '2',
    WEBHOOK_TIMEOUT_MS: '1000',
  });
});
after(async () => {
  for (const res of hanging) res.destroy();
  await t?.close();
  receiver?.closeAllConnections();
  receiver?.close();
});

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const subscribe = async (auth: Record<string, string>, path: string, events: string[]) => {
  const r = await call(t.api('/webhooks'), {
    method: 'POST',
    headers: auth,
    json: { url: receiverUrl + path, events },
  });
  assert.equal(r.status, 201, r.text);
  return r.body as { webhookId: string; secret: string };
};
const log = async (auth: Record<string, string>, id: string) => {
  const r = await call(t.api(`/webhooks/${id}/deliveries`), { headers: auth });
  assert.equal(r.status, 200, r.text);
  return r.body.items as any[];
};

describe('webhooks', () => {
  describe('a subscription, and uploads by its owner and another user', () => {
    let alice: { auth: Record<string, string> };
    let bob: { auth: Record<string, string> };
    let sub: any;
    let mine: { id: string };
    let bobs: { id: string };
    let ready: any;
    before(async () => {
      alice = await t.user('wh-alice');
      bob = await t.user('wh-bob');
      sub = await subscribe(alice.auth, '/alice', ['media.uploaded', 'media.ready']);
      mine = await upload(t, alice.auth, JPEG);
      bobs = await upload(t, bob.auth, JPEG);
      await waitFor(t, bob.auth, bobs.id, ['READY']);
      ready = await until('media.ready delivery', async () =>
        received.find((r) => r.path === '/alice' && JSON.parse(r.body).type === 'media.ready'),
      );
    });

    test('the secret is shown once, the subscription to its owner only', async () => {
      assert.match(sub.secret, /^whsec_/);
      const read = await call(t.api(`/webhooks/${sub.webhookId}`), { headers: alice.auth });
      assert.equal(read.body.secret, undefined, 'the secret is shown once');
      assert.equal((await call(t.api(`/webhooks/${sub.webhookId}`), { headers: bob.auth })).status, 404);
    });

    test('deliveries verify with the standardwebhooks library, tampered ones fail', async () => {
      const verifier = new Webhook(sub.secret);
      const payload = verifier.verify(ready.body, ready.headers) as {
        type: string;
        data: { mediaId: string; status: string };
      };
      assert.equal(payload.data.mediaId, mine.id);
      assert.equal(payload.data.status, 'READY');
      assert.throws(
        () => verifier.verify(ready.body.replace('READY', 'FAILED'), ready.headers),
        'tampering fails',
      );
      assert.throws(() =>
        new Webhook(`whsec_${Buffer.alloc(32, 1).toString('base64')}`).verify(ready.body, ready.headers),
      );
    });

    test('only the owner’s events of the subscribed types', () => {
      const mineOnly = received
        .filter((r) => r.path === '/alice')
        .map((r) => JSON.parse(r.body).data.mediaId);
      assert.ok(!mineOnly.includes(bobs.id), 'bob’s media never reach alice’s webhook');
      const types = received.filter((r) => r.path === '/alice').map((r) => JSON.parse(r.body).type);
      assert.ok(!types.includes('media.processing') && !types.includes('media.progress'), types.join());
    });

    test('each delivery is logged', async () => {
      const entries = await until('two succeeded deliveries', async () => {
        const items = await log(alice.auth, sub.webhookId);
        return items.length === 2 && items.every((d) => d.status === 'succeeded') ? items : undefined;
      });
      for (const d of entries) {
        assert.equal(d.responseStatus, 200);
        assert.equal(d.attempts, 1);
        assert.ok(d.latencyMs >= 0);
      }
      assert.equal(
        ready.headers['webhook-id'],
        entries.find((d) => d.eventType === 'media.ready').webhookMessageId,
      );
    });
  });

  describe('a failing receiver', () => {
    let carol: { auth: Record<string, string> };
    let sub: any;
    let failed: any[];
    test('is retried, then given up', async () => {
      carol = await t.user('wh-carol');
      modes.set('/carol', 'fail');
      sub = await subscribe(carol.auth, '/carol', ['media.uploaded', 'media.ready']);
      await upload(t, carol.auth, JPEG);
      failed = await until('two given-up deliveries', async () => {
        const items = await log(carol.auth, sub.webhookId);
        return items.length === 2 && items.every((d) => d.status === 'failed') ? items : undefined;
      });
      for (const d of failed) {
        assert.equal(d.attempts, 2, 'WEBHOOK_MAX_ATTEMPTS');
        assert.equal(d.responseStatus, 500);
      }
    });

    test('given up, the subscription is disabled and new events make no deliveries', async () => {
      const disabled = await call(t.api(`/webhooks/${sub.webhookId}`), { headers: carol.auth });
      assert.equal(disabled.body.enabled, false);
      assert.match(disabled.body.disabledReason, /2 failed deliveries/);
      // Disabled: new events make no deliveries.
      await upload(t, carol.auth, JPEG);
      await sleep(500);
      assert.equal((await log(carol.auth, sub.webhookId)).length, 2);
    });

    test('enabled again after the fix, its failure count starts over', async () => {
      modes.set('/carol', 'ok');
      const enabled = await call(t.api(`/webhooks/${sub.webhookId}`), {
        method: 'PATCH',
        headers: carol.auth,
        json: { enabled: true },
      });
      assert.equal(enabled.body.enabled, true);
      assert.equal(enabled.body.failuresInRow, 0);
    });

    test('a redelivery sends the same message id again', async () => {
      const target = failed[0];
      const before = received.filter((r) => r.headers['webhook-id'] === target.webhookMessageId).length;
      const again = await call(
        t.api(`/webhooks/${sub.webhookId}/deliveries/${target.deliveryId}/redeliver`),
        {
          method: 'POST',
          headers: carol.auth,
        },
      );
      assert.equal(again.status, 202, again.text);
      await until('the redelivery', async () => {
        const d = (await log(carol.auth, sub.webhookId)).find((x) => x.deliveryId === target.deliveryId);
        return d.status === 'succeeded' ? d : undefined;
      });
      assert.equal(
        received.filter((r) => r.headers['webhook-id'] === target.webhookMessageId).length,
        before + 1,
        'the same message id again',
      );
    });
  });

  describe('a receiver that never answers', () => {
    let dave: { auth: Record<string, string> };
    let sub: any;
    let m: { id: string };
    before(async () => {
      dave = await t.user('wh-dave');
      modes.set('/dave', 'hang');
      sub = await subscribe(dave.auth, '/dave', ['media.uploaded']);
      m = await upload(t, dave.auth, JPEG);
    });

    test('does not delay processing', async () => {
      await waitFor(t, dave.auth, m.id, ['READY']);
    });

    test('its attempt times out', async () => {
      const d = await until('a timed-out attempt', async () => {
        const items = await log(dave.auth, sub.webhookId);
        return items[0]?.lastError ? items[0] : undefined;
      });
      assert.match(d.lastError, /no answer within 1000 ms/);
    });
  });

  test('bad subscriptions are 4xx', async () => {
    const erin = await t.user('wh-erin');
    for (const json of [
      { url: 'ftp://example.com/x', events: ['media.ready'] },
      { url: 'https://user:pw@example.com/x', events: ['media.ready'] },
      { url: 'https://example.com/x', events: ['media.progress'] },
      { url: 'https://example.com/x', events: [] },
    ]) {
      const r = await call(t.api('/webhooks'), { method: 'POST', headers: erin.auth, json });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.body.error.code, 'validation_failed');
    }
  });
});

describe('events no subscription carries', () => {
  for (const prepared of [false, true])
    test(`are settled in one statement and the carried one is left for a delivery (${prepared ? 'named, prepared once per connection' : 'unnamed'})`, async () => {
      // Inside a transaction that rolls back: the server's own dispatcher never sees these rows.
      const db = await t.server.database.pool.connect();
      try {
        await db.query('BEGIN');
        await db.query(
          `INSERT INTO webhook_subscriptions (id, owner_user_id, url, event_types, secret)
         VALUES (gen_random_uuid(), 'settle-a', 'http://127.0.0.1:9/a', '{media.ready}', 'whsec_x')`,
        );
        const event = async (type: string, owner: string) =>
          (
            await db.query<{ id: string }>(
              `INSERT INTO events (type, owner_user_id, payload) VALUES ($1, $2, '{}') RETURNING id::text`,
              [type, owner],
            )
          ).rows[0]!.id;
        const otherOwner = await event('media.ready', 'settle-b');
        const carried = await event('media.ready', 'settle-a');
        const otherType = await event('media.deleted', 'settle-a');
        const settled = await settleUnmatchedEvents(db, 100, { prepared });
        assert.equal(settled.rest, true, 'the carried event remains');
        if (prepared) {
          // (The server's dispatcher may have prepared it on this pooled connection already.)
          const named = await db.query(
            `SELECT 1 FROM pg_prepared_statements WHERE name = 'mediary-settle-events'`,
          );
          assert.equal(named.rowCount, 1, 'a named statement of this connection');
        }
        const pending = async () =>
          (
            await db.query<{ id: string }>(
              `SELECT id::text FROM events WHERE dispatched_at IS NULL AND id = ANY ($1::bigint[]) ORDER BY id`,
              [[otherOwner, carried, otherType]],
            )
          ).rows.map((r) => r.id);
        assert.deepEqual(await pending(), [carried]);
        const d = await dispatchEvents(db, 100);
        assert.equal(d.deliveries.length, 1, 'one delivery, for the carried event');
        assert.deepEqual(await pending(), []);
        assert.equal((await settleUnmatchedEvents(db, 100, { prepared })).rest, false, 'nothing left');
      } finally {
        await db.query('ROLLBACK');
        db.release();
      }
    });

  test('an upload by an owner without webhooks leaves every event dispatched and no delivery', async () => {
    const nobody = await t.user('wh-nobody');
    const { id } = await upload(t, nobody.auth, JPEG);
    await waitFor(t, nobody.auth, id, ['READY']);
    const pool = t.server.database.pool;
    await until('every event of the upload dispatched', async () => {
      const { rows } = await pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM events WHERE media_id = $1 AND dispatched_at IS NULL`,
        [id],
      );
      return rows[0]!.n === 0 ? true : undefined;
    });
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM webhook_deliveries d JOIN events e ON e.id = d.event_id WHERE e.media_id = $1`,
      [id],
    );
    assert.equal(rows[0]!.n, 0);
  });
});

describe('SSRF guard', () => {
  test('forbidden addresses, IPv4 and IPv6 forms', () => {
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::a9fe:a9fe',
    ]) {
      assert.equal(isForbiddenAddress(a), true, a);
    }
    for (const a of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111'])
      assert.equal(isForbiddenAddress(a), false, a);
  });

  test('refused at connect time (a name that resolves to loopback included), unless allowed', async () => {
    const count = received.length;
    const port = new URL(receiverUrl).port;
    for (const url of [
      `http://127.0.0.1:${port}/ssrf`,
      `http://localhost:${port}/ssrf`,
      `http://[::ffff:127.0.0.1]:${port}/ssrf`,
    ]) {
      const r = await sendWebhook(url, {}, '{}', { timeoutMs: 2000, allowPrivateTargets: false });
      assert.equal(r.ok, false, url);
      assert.match(r.error ?? '', /forbidden address/, url);
    }
    assert.equal(received.length, count, 'nothing reached the receiver');
    const allowed = await sendWebhook(`http://localhost:${port}/ssrf`, {}, '{}', {
      timeoutMs: 2000,
      allowPrivateTargets: true,
    });
    assert.equal(allowed.ok, true, allowed.error ?? '');
  });

  test('the API refuses a private target without WEBHOOK_ALLOW_PRIVATE_TARGETS', async () => {
    const strict = await startTestServer({ DATABASE_URL: t.databaseUrl, WORKER_ENABLED: 'false' });
    try {
      const frank = await strict.user('wh-frank');
      for (const url of [
        'http://169.254.169.254/latest/meta-data',
        'http://[::1]:8080/x',
        'http://localhost/x',
      ]) {
        const r = await call(strict.api('/webhooks'), {
          method: 'POST',
          headers: frank.auth,
          json: { url, events: ['media.ready'] },
        });
        assert.equal(r.status, 422, `${url}: ${r.text}`);
        assert.equal(r.body.error.code, 'webhook_target_refused');
      }
    } finally {
      await strict.close();
    }
  });
});

describe('the outbox across a restart', () => {
  let b: TestServer | undefined;
  let kept: string;
  let dropped: string;
  let secret: string;
  before(async () => {
    const a = await startTestServer({
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      WEBHOOK_RETRY_DELAY_SECONDS: '0',
    });
    const databaseUrl = a.databaseUrl;
    try {
      const gus = await a.user('wh-gus');
      const sub = await call(a.api('/webhooks'), {
        method: 'POST',
        headers: gus.auth,
        json: { url: `${receiverUrl}/gus`, events: ['media.deleted'] },
      });
      assert.equal(sub.status, 201, sub.text);
      secret = sub.body.secret;
      kept = (await upload(a, gus.auth, JPEG)).id;
      dropped = (await upload(a, gus.auth, JPEG)).id;
    } finally {
      await a.close();
    }
    // No server (no dispatcher, no sender) runs now: the state changes commit on their own.
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      await db.query(`UPDATE media SET status = 'DELETED', deleted_at = now() WHERE id = $1`, [kept]);
      await db.query('BEGIN');
      await db.query(`UPDATE media SET status = 'DELETED', deleted_at = now() WHERE id = $1`, [dropped]);
      await db.query('ROLLBACK');
    } finally {
      await db.end();
    }
    b = await startTestServer({
      DATABASE_URL: databaseUrl,
      WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
      WORKER_ENABLED: 'false',
    });
  });
  after(async () => {
    await b?.close();
  });

  test('an event committed while no server runs is delivered after the start', async () => {
    const got = await until('the delivery after the restart', async () =>
      received.find((r) => r.path === '/gus' && JSON.parse(r.body).data.mediaId === kept),
    );
    const payload = new Webhook(secret).verify(got.body, got.headers) as { type: string };
    assert.equal(payload.type, 'media.deleted');
  });

  test('a change that rolled back is never delivered', async () => {
    // Once the kept one arrived, the dispatcher has passed every committed event.
    await until('the delivery after the restart', async () =>
      received.find((r) => r.path === '/gus' && JSON.parse(r.body).data.mediaId === kept),
    );
    await sleep(300);
    assert.ok(
      !received.some((r) => r.path === '/gus' && JSON.parse(r.body).data.mediaId === dropped),
      'no delivery for the change that rolled back',
    );
  });
});
