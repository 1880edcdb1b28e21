/**
 * Admission control (ADMISSION_MAX_BACKLOG_SECONDS, issue 22): while the oldest waiting processing
 * job is older than the bound, new sessions are refused with 503 processing_backlog + Retry-After
 * and the error body; nothing accepted is lost, and the refused session is created once when
 * retried after the backlog is young again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { AppError } from '../../src/errors.ts';
import { Admission } from '../../src/processing/admission.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { upload } from './helpers.ts';

const silent = pino({ level: 'silent' });

describe('Admission (unit)', () => {
  test('admits while the backlog is within the bound, refuses past it with Retry-After', async () => {
    let age = 5;
    const gate = new Admission(() => Promise.resolve(age), 10, silent);
    await gate.check();
    age = 500;
    const fresh = new Admission(() => Promise.resolve(age), 10, silent);
    const err = await fresh.check().then(
      () => assert.fail('admitted'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AppError);
    assert.equal(err.code, 'processing_backlog');
    assert.equal(err.status, 503);
    const retryAfter = Number(err.headers?.['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 30, String(retryAfter));
    assert.deepEqual(err.details, { backlogSeconds: 500, maxBacklogSeconds: 10 });
  });

  test('once refusing, refuses until the backlog is younger than half the bound', async () => {
    let age = 11;
    const gate = new Admission(() => Promise.resolve(age), 10, silent, 0);
    const refused = () =>
      gate.check().then(
        () => false,
        (e: unknown) => e instanceof AppError && e.code === 'processing_backlog',
      );
    assert.equal(await refused(), true);
    age = 6;
    assert.equal(await refused(), true, 'still over half the bound');
    age = 4;
    assert.equal(await refused(), false);
    age = 9;
    assert.equal(await refused(), false, 'admitting again until past the bound');
  });

  test('a bound of 0 never reads the queue; a failed reading admits', async () => {
    let reads = 0;
    const off = new Admission(() => Promise.resolve(++reads * 1e6), 0, silent);
    await off.check();
    assert.equal(reads, 0);
    const broken = new Admission(() => Promise.reject(new Error('database down')), 10, silent);
    await broken.check();
  });

  test('concurrent checks share one reading of the queue', async () => {
    let reads = 0;
    const gate = new Admission(
      async () => {
        reads++;
        await sleep(5);
        return 0;
      },
      10,
      silent,
    );
    await Promise.all(Array.from({ length: 50 }, () => gate.check()));
    assert.equal(reads, 1);
  });
});

describe('POST /media under a backlog older than the bound', () => {
  let t: TestServer;
  before(async () => {
    // No worker: jobs stay queued, so the test sets the backlog's age itself.
    t = await startTestServer({ WORKER_ENABLED: 'false', ADMISSION_MAX_BACKLOG_SECONDS: '60' });
  });
  after(async () => {
    await t?.close();
  });

  const jpeg = fixture('cameras/Canon_40D.jpg');
  const session = (auth: Record<string, string>, messageId: string) =>
    call(t.api('/media'), {
      method: 'POST',
      headers: auth,
      json: {
        fileName: 'p.jpg',
        mimeType: 'image/jpeg',
        bytes: jpeg.length,
        sha256: sha256(jpeg),
        messageId,
      },
    });
  const setBacklogAge = (seconds: number) =>
    t.server.database.pool.query(
      `UPDATE pgboss.job SET start_after = now() - make_interval(secs => $1)
        WHERE name = 'media-process' AND state < 'active'`,
      [seconds],
    );
  const rowsFor = async (messageId: string) =>
    (await t.server.database.pool.query(`SELECT id, status FROM media WHERE message_id = $1`, [messageId]))
      .rows;

  test('refused with 503 + Retry-After and the error body; nothing lost; created once when retried', async () => {
    const dev = await t.device('admission');
    const first = await upload(t, dev.auth, jpeg, 'image/jpeg', { messageId: 'accepted-1' });
    assert.equal(first.done.status, 200, first.done.text);

    await setBacklogAge(3600);
    // The service reads the queue's age at most once a second: ask until it has seen the change
    // (sessions admitted meanwhile are ordinary ones).
    let refusedId = 'refused-0';
    let refused = await session(dev.auth, refusedId);
    for (let i = 1; refused.status !== 503 && i <= 100; i++) {
      assert.equal(refused.status, 201, refused.text);
      await sleep(100);
      refusedId = `refused-${i}`;
      refused = await session(dev.auth, refusedId);
    }
    assert.equal(refused.status, 503, refused.text);
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 30, String(retryAfter));
    assert.equal(refused.body.error.code, 'processing_backlog');
    assert.equal(typeof refused.body.error.message, 'string');
    assert.equal(typeof refused.body.error.requestId, 'string');
    assert.equal(refused.body.error.details.maxBacklogSeconds, 60);
    assert.ok(refused.body.error.details.backlogSeconds >= 3600);
    assert.deepEqual(await rowsFor(refusedId), [], 'a refused session leaves no row');
    // Checked before authentication: a refusal costs no statement (documented: 503 before 401).
    const anonymous = await session({}, 'anonymous');
    assert.equal(anonymous.status, 503, anonymous.text);
    assert.equal(anonymous.body.error.code, 'processing_backlog');

    // What was accepted before stays accepted, its job still queued.
    const { rows: jobs } = await t.server.database.pool.query(
      `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'media-process' AND data->>'mediaId' = $1`,
      [first.id],
    );
    assert.equal(jobs[0].n, 1);
    assert.deepEqual(
      (await rowsFor('accepted-1')).map((r) => r.status),
      ['UPLOADED'],
    );

    // The backlog is young again: the same request is admitted, once.
    await setBacklogAge(0);
    let again = await session(dev.auth, refusedId);
    for (let i = 0; again.status === 503 && i < 100; i++) {
      await sleep(100);
      again = await session(dev.auth, refusedId);
    }
    assert.equal(again.status, 201, again.text);
    assert.equal((await rowsFor(refusedId)).length, 1);
  });
});
