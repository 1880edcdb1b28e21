/**
 * Webhooks survive a crash between commit and delivery (issue 20). A real `mediary serve` has a
 * user's subscription pointing at a local receiver that, at first, accepts every delivery and never
 * answers; media are uploaded so `media.uploaded` / `media.ready` events commit. Once a delivery is
 * in flight the server is SIGKILLed, the receiver starts answering 200, and the server restarts on
 * the same database. Then every event the database committed for those media (table `events`) has a
 * delivery (`webhook_deliveries`) that reached the receiver, verifies with the off-the-shelf
 * `standardwebhooks` library, and is logged `succeeded`; the deliveries cut off by the crash are
 * sent again after the restart. Delivery is at-least-once: a delivery may arrive more than once
 * (the crash can land after the receiver read it), always with the same `webhook-id`, so receivers
 * deduplicate on it; the test allows duplicates and checks that they share the id and body.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { mintUserToken } from '../../src/auth/principals.ts';
import { fixture } from '../helpers/files.ts';
import {
  embeddedUrl,
  poolFor,
  recordFaultResults,
  spawnService,
  stopOrphanPostgres,
  type FaultRow,
  type ServiceProcess,
} from '../helpers/process.ts';
import { call, JWT_SECRET, tempDir, testEnv } from '../helpers/server.ts';
import { createTestDatabase } from '../helpers/test-postgres.ts';

const WEBHOOK_TYPES = ['media.uploaded', 'media.ready'];
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Received {
  phase: 'before' | 'after';
  id: string;
  headers: Record<string, string>;
  body: string;
}

let receiver: Server;
let receiverUrl: string;
let answering = false;
const received: Received[] = [];
const hanging: ServerResponse[] = [];

let dataDir: string;
let env: Record<string, string>;
let svc: ServiceProcess | undefined;
let db: pg.Pool;
const rows: FaultRow[] = [];

before(async () => {
  receiver = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers = req.headers as Record<string, string>;
      received.push({
        phase: answering ? 'after' : 'before',
        id: headers['webhook-id'] ?? '',
        headers,
        body: Buffer.concat(chunks).toString(),
      });
      // Before the crash: read the delivery, never answer (it stays in flight).
      if (!answering) return void hanging.push(res);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const addr = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/hook`;

  dataDir = await tempDir('mediary-fault-webhook-crash-');
  const databaseUrl = await createTestDatabase();
  env = await testEnv(dataDir, {
    LOG_LEVEL: 'warn',
    WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
    // Long enough that the first attempt is still waiting when the SIGKILL comes.
    WEBHOOK_TIMEOUT_MS: '5000',
    WEBHOOK_RETRY_DELAY_SECONDS: '1',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  });
  svc = await spawnService(env);
  db = poolFor(databaseUrl ?? embeddedUrl(dataDir, env.EMBEDDED_PG_PORT!));
});

after(async () => {
  for (const res of hanging) res.destroy();
  await svc?.kill('SIGTERM');
  await db?.end();
  await stopOrphanPostgres(dataDir);
  receiver?.closeAllConnections();
  receiver?.close();
  if (!process.env.FAULT_KEEP) await rm(dataDir, { recursive: true, force: true });
  await recordFaultResults('webhook-crash', rows);
});

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  ms = 45_000,
  state: () => unknown = () => undefined,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(state())}`);
    await sleep(50);
  }
}

async function upload(auth: Record<string, string>, bytes: Buffer): Promise<string> {
  const s = await call(svc!.api('/media'), {
    method: 'POST',
    headers: auth,
    json: { fileName: 'f.jpg', mimeType: 'image/jpeg', bytes: bytes.length, sha256: sha(bytes) },
  });
  assert.equal(s.status, 201, s.text);
  const put = await call(s.body.upload.url, { method: 'PUT', headers: s.body.upload.headers, body: bytes });
  assert.equal(put.status, 200, put.text);
  const id = s.body.mediaId as string;
  const done = await call(svc!.api(`/media/${id}/complete`), { method: 'POST', headers: auth });
  assert.equal(done.status, 200, done.text);
  return id;
}

/** Committed webhook-carried events of `ids`, with the delivery made for each (if any yet). */
async function committed(subscriptionId: string, ids: string[]) {
  const { rows: r } = await db.query<{
    event_id: string;
    type: string;
    delivery_id: string | null;
    status: string | null;
  }>(
    `SELECT e.id::text AS event_id, e.type, d.id::text AS delivery_id, d.status
       FROM events e LEFT JOIN webhook_deliveries d ON d.event_id = e.id AND d.subscription_id = $1
      WHERE e.media_id = ANY($2) AND e.type = ANY($3) ORDER BY e.id`,
    [subscriptionId, ids, WEBHOOK_TYPES],
  );
  return r;
}

test('a webhook delivery in flight when the server is SIGKILLed is delivered after the restart, with no committed event lost', async () => {
  const token = await mintUserToken(JWT_SECRET, 'wh-crash-user');
  const auth = { authorization: `Bearer ${token}` };
  const sub = await call(svc!.api('/webhooks'), {
    method: 'POST',
    headers: auth,
    json: { url: receiverUrl, events: WEBHOOK_TYPES },
  });
  assert.equal(sub.status, 201, sub.text);
  const { webhookId, secret } = sub.body as { webhookId: string; secret: string };

  const media = [
    await upload(auth, fixture('cameras/Canon_40D.jpg')),
    await upload(auth, fixture('cameras/Nikon_D70.jpg')),
  ];
  await until('a delivery in flight', async () => (received.length > 0 ? true : undefined));
  await svc!.kill('SIGKILL');
  svc = undefined;
  for (const res of hanging.splice(0)) res.destroy();

  // What the database committed before the crash, and which deliveries the crash cut off.
  const atCrash = await committed(webhookId, media);
  assert.ok(atCrash.length > 0, 'events committed before the crash');
  const inFlight = new Set(received.map((r) => r.id));
  const { rows: open } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM webhook_deliveries WHERE subscription_id = $1 AND status = 'pending'
        AND 'msg_' || id::text = ANY($2)`,
    [webhookId, [...inFlight]],
  );
  assert.equal(open[0]!.n, inFlight.size, 'the crash left the in-flight deliveries pending');

  answering = true;
  const restartedAt = Date.now();
  svc = await spawnService(env);
  let last: unknown;
  const final = await until(
    'every committed event delivered and logged',
    async () => {
      const st = await Promise.all(
        media.map((id) => call(svc!.api(`/media/${id}/status`), { headers: auth })),
      );
      for (const s of st) assert.notEqual(s.body.status, 'FAILED', s.text);
      if (!st.every((s) => s.body.status === 'READY')) return undefined;
      const now = await committed(webhookId, media);
      last = now;
      return now.length === 2 * media.length && now.every((e) => e.status === 'succeeded') ? now : undefined;
    },
    45_000,
    () => last,
  );

  // Every event committed at the crash is among them: none lost, none replaced.
  const finalIds = new Set(final.map((e) => e.event_id));
  for (const e of atCrash) assert.ok(finalIds.has(e.event_id), `event ${e.event_id} (${e.type}) kept`);
  assert.deepEqual(
    final.map((e) => e.type).sort(),
    [...Array(media.length).fill(WEBHOOK_TYPES)].flat().sort(),
  );

  const verifier = new Webhook(secret);
  const byId = new Map<string, Received[]>();
  for (const r of received) byId.set(r.id, [...(byId.get(r.id) ?? []), r]);
  for (const e of final) {
    const copies = byId.get(`msg_${e.delivery_id}`) ?? [];
    assert.ok(copies.length >= 1, `event ${e.event_id} (${e.type}) reached the receiver`);
    assert.ok(
      copies.some((c) => c.phase === 'after'),
      `event ${e.event_id} (${e.type}) was answered after the restart`,
    );
    for (const c of copies) {
      const p = verifier.verify(c.body, c.headers) as {
        type: string;
        eventId: string;
        data: { mediaId: string };
      };
      assert.equal(p.type, e.type);
      assert.equal(p.eventId, e.event_id);
      assert.ok(media.includes(p.data.mediaId));
      // Duplicates (at-least-once) are the same message: same webhook-id, same body.
      assert.equal(c.body, copies[0]!.body);
    }
  }
  // Each delivery the crash cut off was sent again after the restart under its own webhook-id.
  for (const id of inFlight) {
    assert.ok(
      byId.get(id)!.some((c) => c.phase === 'after'),
      `${id}, in flight at the crash, was delivered after the restart`,
    );
  }
  // Nothing reached the receiver that the database does not hold.
  const known = new Set(final.map((e) => `msg_${e.delivery_id}`));
  for (const id of byId.keys()) assert.ok(known.has(id), `${id} is a logged delivery`);

  const duplicates = received.length - byId.size;
  rows.push({
    scenario: 'webhooks: SIGKILL with a delivery in flight',
    trials: final.length,
    survived: final.filter((e) => byId.has(`msg_${e.delivery_id}`)).length,
    notes: `${inFlight.size} in flight at the crash, ${atCrash.length} events committed before it, ${duplicates} duplicate(s); all delivered ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after the restart began`,
  });
});
