/**
 * Admission control (ADMISSION_MAX_BACKLOG_SECONDS, on by default, issue 22): while the oldest
 * image job waiting in its lane is older than the bound, new sessions are refused with 503
 * processing_backlog + Retry-After and the error body; nothing accepted is lost, and the refused
 * session is created once when retried after the backlog is young again. Waiting videos (their
 * own lane) never refuse anything.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import pino from 'pino';
import { randomUUID } from 'node:crypto';
import { DEFAULT_MAX_BACKLOG_SECONDS, loadSettings } from '../../src/config/load.ts';
import { withTransaction } from '../../src/db/pool.ts';
import { AppError } from '../../src/errors.ts';
import { PROTO_OPTIONS, PROTO_PATH } from '../../src/grpc/server.ts';
import { Admission } from '../../src/processing/admission.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { upload } from './helpers.ts';

const silent = pino({ level: 'silent' });
const GRPC_TOKEN = 'admission-grpc-token-admission-grpc-token-01';

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
    const ask = () =>
      gate.check().then(
        () => false,
        (e: unknown) => e instanceof AppError && e.code === 'processing_backlog',
      );
    // After the first, a reading is taken in the background and decides from the next request on.
    const refused = async () => {
      await ask();
      await gate.settled();
      return ask();
    };
    assert.equal(await refused(), true);
    age = 6;
    assert.equal(await refused(), true, 'still over half the bound');
    age = 4;
    assert.equal(await refused(), false);
    age = 9;
    assert.equal(await refused(), false, 'admitting again until past the bound');
  });

  test('on by default', () => {
    assert.ok(DEFAULT_MAX_BACKLOG_SECONDS > 0);
    assert.equal(loadSettings({}).admission.maxBacklogSeconds, DEFAULT_MAX_BACKLOG_SECONDS);
    assert.equal(loadSettings({ ADMISSION_MAX_BACKLOG_SECONDS: '0' }).admission.maxBacklogSeconds, 0);
  });

  test('Retry-After is spread between a quarter and half the bound', async () => {
    const gate = new Admission(() => Promise.resolve(1000), 60, silent);
    const waits = new Set<number>();
    for (let i = 0; i < 100; i++) {
      const err = await gate.check().then(
        () => assert.fail('admitted'),
        (e: unknown) => e as AppError,
      );
      const wait = Number(err.headers?.['retry-after']);
      assert.ok(Number.isInteger(wait) && wait >= 15 && wait <= 30, String(wait));
      waits.add(wait);
    }
    // 100 draws from 16 values: all alike would be a constant, which sends every refused client
    // back in the same second.
    assert.ok(waits.size > 1, [...waits].join());
  });

  test('a bound of 0 never reads the queue', async () => {
    let reads = 0;
    const off = new Admission(() => Promise.resolve(++reads * 1e6), 0, silent);
    await off.check();
    assert.equal(reads, 0);
  });

  test('a failed reading of the queue admits', async () => {
    const broken = new Admission(() => Promise.reject(new Error('database down')), 10, silent);
    await broken.check();
  });

  test('after the first reading, requests do not wait for the next one', async () => {
    let age = 0;
    let reads = 0;
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    const gate = new Admission(
      async () => {
        if (reads++ > 0) await slow; // every reading after the first hangs until released
        return age;
      },
      10,
      silent,
      0,
    );
    await gate.check();
    age = 500;
    await gate.check(); // starts the second reading, which hangs; decided on the first
    await gate.check();
    assert.equal(reads, 2, 'one reading in flight at a time');
    release();
    await gate.settled();
    await assert.rejects(
      gate.check(),
      (e: unknown) => e instanceof AppError && e.code === 'processing_backlog',
    );
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
    t = await startTestServer({
      WORKER_ENABLED: 'false',
      ADMISSION_MAX_BACKLOG_SECONDS: '60',
      GRPC_PORT: '0',
      GRPC_SERVICE_TOKEN: GRPC_TOKEN,
    });
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
  const admittedForAWhile = async (auth: Record<string, string>, prefix: string) => {
    // The gate reads the queue's age at most once a second: sessions for longer than that.
    const until = Date.now() + 2500;
    for (let i = 0; Date.now() < until; i++) {
      const res = await session(auth, `${prefix}-${i}`);
      assert.equal(res.status, 201, res.text);
      await sleep(100);
    }
  };
  const rowsFor = async (messageId: string) =>
    (await t.server.database.pool.query(`SELECT id, status FROM media WHERE message_id = $1`, [messageId]))
      .rows;

  test('videos waiting in their own lane, however long, refuse nothing', async () => {
    const dev = await t.device('admission-video-lane');
    await withTransaction(t.server.database.pool, (tx) =>
      t.server.queue.enqueueProcessing(tx, randomUUID(), 'video'),
    );
    const { rowCount } = await t.server.database.pool.query(
      `UPDATE pgboss.job SET start_after = now() - interval '1 hour'
        WHERE name = 'media-process-video' AND state < 'active'`,
    );
    assert.equal(rowCount, 1);
    try {
      await admittedForAWhile(dev.auth, 'video-lane');
    } finally {
      await t.server.database.pool.query(`DELETE FROM pgboss.job WHERE name = 'media-process-video'`);
    }
  });

  describe('a session refused, then retried', () => {
    let dev: { auth: Record<string, string> };
    let first: Awaited<ReturnType<typeof upload>>;
    let refusedId = 'refused-0';

    test('refused with 503, Retry-After and the error body, leaving no row', async () => {
      dev = await t.device('admission');
      first = await upload(t, dev.auth, jpeg, 'image/jpeg', { messageId: 'accepted-1' });
      assert.equal(first.done.status, 200, first.done.text);

      await setBacklogAge(3600);
      // The service reads the queue's age at most once a second: ask until it has seen the change
      // (sessions admitted meanwhile are ordinary ones).
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
    });

    test('the refusal comes before authentication', async () => {
      // Checked before authentication: a refusal costs no statement (documented: 503 before 401).
      const anonymous = await session({}, 'anonymous');
      assert.equal(anonymous.status, 503, anonymous.text);
      assert.equal(anonymous.body.error.code, 'processing_backlog');
    });

    test('what was accepted before stays accepted, its job still queued', async () => {
      const { rows: jobs } = await t.server.database.pool.query(
        `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'media-process' AND data->>'mediaId' = $1`,
        [first.id],
      );
      assert.equal(jobs[0].n, 1);
      assert.deepEqual(
        (await rowsFor('accepted-1')).map((r) => r.status),
        ['UPLOADED'],
      );
    });

    test('once the backlog is young again, the same request is admitted, once', async () => {
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

  describe('every door that opens sessions is gated', () => {
    let user: { id: string; auth: Record<string, string> };
    let tusHeaders: Record<string, string>;
    let open: Awaited<ReturnType<typeof call>>;
    before(async () => {
      user = await t.user('admission-doors');
      tusHeaders = {
        ...user.auth,
        'tus-resumable': '1.0.0',
        'upload-length': String(jpeg.length),
        'upload-metadata': `filename ${Buffer.from('t.jpg').toString('base64')},filetype ${Buffer.from('image/jpeg').toString('base64')}`,
      };
      open = await call(t.api('/tus'), { method: 'POST', headers: tusHeaders });
      assert.equal(open.status, 201, open.text);

      await setBacklogAge(3600);
      let probe = await session(user.auth, 'doors-0');
      for (let i = 1; probe.status !== 503 && i <= 100; i++) {
        await sleep(100);
        probe = await session(user.auth, `doors-${i}`);
      }
      assert.equal(probe.status, 503, probe.text);
    });
    after(async () => {
      await setBacklogAge(0);
    });

    test('the form', async () => {
      const form = new FormData();
      form.set('fileName', 'f.jpg');
      form.set('mimeType', 'image/jpeg');
      form.set('bytes', String(jpeg.length));
      form.set('file', new Blob([jpeg], { type: 'image/jpeg' }), 'f.jpg');
      const viaForm = await call(t.api('/media/form'), { method: 'POST', headers: user.auth, body: form });
      assert.equal(viaForm.status, 503, viaForm.text);
      assert.equal(viaForm.body.error.code, 'processing_backlog');
    });

    test('tus creation', async () => {
      const viaTus = await call(t.api('/tus'), { method: 'POST', headers: tusHeaders });
      assert.equal(viaTus.status, 503, viaTus.text);
      assert.ok(Number(viaTus.headers.get('retry-after')) >= 1);
    });

    test('gRPC CreateUploadSession', async () => {
      const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, PROTO_OPTIONS)) as unknown as {
        mediary: { v1: { MediaService: new (addr: string, creds: grpc.ChannelCredentials) => grpc.Client } };
      };
      const client = new pkg.mediary.v1.MediaService(
        `127.0.0.1:${t.server.grpcPort}`,
        grpc.credentials.createInsecure(),
      ) as grpc.Client & Record<string, (...args: unknown[]) => void>;
      try {
        const metadata = new grpc.Metadata();
        metadata.set('authorization', `Bearer ${GRPC_TOKEN}`);
        const err = await new Promise<grpc.ServiceError | null>((resolve) =>
          client.CreateUploadSession!(
            { userId: user.id, fileName: 'g.jpg', mimeType: 'image/jpeg', bytes: jpeg.length },
            metadata,
            (e: grpc.ServiceError | null) => resolve(e),
          ),
        );
        assert.equal(err?.code, grpc.status.UNAVAILABLE, String(err));
        assert.equal(err?.metadata.get('mediary-error-code')[0], 'processing_backlog');
      } finally {
        client.close();
      }
    });

    test('an upload opened before goes on: its bytes are not a new session', async () => {
      const url = open.headers.get('location')!;
      const patch = await call(new URL(url, t.base).toString(), {
        method: 'PATCH',
        headers: {
          ...user.auth,
          'tus-resumable': '1.0.0',
          'upload-offset': '0',
          'content-type': 'application/offset+octet-stream',
        },
        body: jpeg,
      });
      assert.equal(patch.status, 204, patch.text);
    });

    test('the refused doors created nothing', async () => {
      const { rows } = await t.server.database.pool.query(
        `SELECT file_name FROM media WHERE owner_user_id = $1 AND file_name IN ('f.jpg', 'g.jpg', 't.jpg')`,
        [user.id],
      );
      assert.deepEqual(
        rows.map((r) => r.file_name),
        ['t.jpg'],
        'the refused doors created nothing; the tus upload opened before is there',
      );
    });
  });
});
