/**
 * The internal gRPC API with a real @grpc/grpc-js client built from proto/mediary/v1/media.proto,
 * against a real server (Postgres, local store): the service credential, the same use cases as
 * HTTP, errors mapped from our table, deadlines and cancellation; and the proto itself linted and
 * checked for breaking changes against the released descriptor with buf.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ERRORS, type ErrorCode } from '../../src/errors.ts';
import { grpcStatusOf } from '../../src/grpc/errors.ts';
import { PROTO_OPTIONS, PROTO_PATH } from '../../src/grpc/server.ts';
import { call, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { fixture, sha256 } from '../helpers/files.ts';

const run = promisify(execFile);
const TOKEN = 'grpc-service-token-grpc-service-token-0123';
const JPEG = fixture('cameras/Pentax_K10D.jpg');
const PROTO_DIR = path.resolve(path.dirname(PROTO_PATH), '../..');

type Client = grpc.Client & Record<string, (...args: unknown[]) => grpc.ClientUnaryCall>;
let t: TestServer;
let client: Client;

before(async () => {
  t = await startTestServer({ GRPC_PORT: '0', GRPC_SERVICE_TOKEN: TOKEN });
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_PATH, PROTO_OPTIONS)) as any;
  client = new pkg.mediary.v1.MediaService(
    `127.0.0.1:${t.server.grpcPort}`,
    grpc.credentials.createInsecure(),
  );
});
after(async () => {
  client?.close();
  await t?.close();
});

const auth = (token = TOKEN) => {
  const m = new grpc.Metadata();
  m.set('authorization', `Bearer ${token}`);
  return m;
};

/** Calls `method`; resolves with the answer or the gRPC error (never rejects). */
function rpc(
  method: string,
  req: unknown,
  opts: { metadata?: grpc.Metadata; deadline?: Date; cancelAfterMs?: number } = {},
): Promise<{ ok: any; err: (grpc.ServiceError & { mediaryCode?: string }) | null }> {
  return new Promise((resolve) => {
    const c = client[method]!(
      req,
      opts.metadata ?? auth(),
      { ...(opts.deadline ? { deadline: opts.deadline } : {}) },
      (err: grpc.ServiceError | null, ok: unknown) => {
        if (err) {
          const code = err.metadata?.get('mediary-error-code')[0];
          resolve({ ok: null, err: Object.assign(err, { mediaryCode: code as string | undefined }) });
        } else resolve({ ok, err: null });
      },
    );
    if (opts.cancelAfterMs !== undefined) setTimeout(() => c.cancel(), opts.cancelAfterMs);
  });
}

async function uploadedViaGrpc(userId: string, extra: Record<string, unknown> = {}) {
  const s = await rpc('CreateUploadSession', {
    userId,
    fileName: 'g.jpg',
    mimeType: 'image/jpeg',
    bytes: JPEG.length,
    sha256: sha256(JPEG),
    ...extra,
  });
  assert.equal(s.err, null, s.err?.message);
  assert.equal(s.ok.upload.method, 'PUT');
  const put = await call(s.ok.upload.url, { method: 'PUT', headers: s.ok.upload.headers, body: JPEG });
  assert.equal(put.status, 200, put.text);
  const user = await t.user(userId);
  const done = await call(t.api(`/media/${s.ok.media.mediaId}/complete`), {
    method: 'POST',
    headers: user.auth,
  });
  assert.equal(done.status, 200, done.text);
  return s.ok.media.mediaId as string;
}

describe('gRPC API', () => {
  test('the service credential is required', async () => {
    for (const metadata of [new grpc.Metadata(), auth('wrong-token')]) {
      const res = await rpc('GetMedia', { userId: 'u', mediaId: crypto.randomUUID() }, { metadata });
      assert.equal(res.err?.code, grpc.status.UNAUTHENTICATED);
      assert.equal(res.err?.mediaryCode, 'unauthorized');
    }
  });

  test('a session made over gRPC is an ordinary media: bytes, completion, idempotency, reads', async () => {
    const id = await uploadedViaGrpc('g-alice', { idempotencyKey: 'g-1', purpose: 'MEDIA_PURPOSE_POST' });
    const again = await rpc('CreateUploadSession', {
      userId: 'g-alice',
      fileName: 'g.jpg',
      mimeType: 'image/jpeg',
      bytes: JPEG.length,
      idempotencyKey: 'g-1',
    });
    assert.equal(again.ok.created, false);
    assert.equal(again.ok.media.mediaId, id);
    assert.equal(again.ok.upload, null, 'no instructions once the bytes are in');
    const got = await rpc('GetMedia', { userId: 'g-alice', mediaId: id });
    assert.equal(got.ok.media.ownerUserId, 'g-alice');
    assert.equal(got.ok.media.purpose, 'MEDIA_PURPOSE_POST');
    assert.match(got.ok.media.status, /^(UPLOADED|PROCESSING|READY)$/);
    // Another user reads it as missing, over gRPC as over HTTP.
    const other = await rpc('GetMedia', { userId: 'g-bob', mediaId: id });
    assert.equal(other.err?.code, grpc.status.NOT_FOUND);
    assert.equal(other.err?.mediaryCode, 'not_found');
    const batch = await rpc('BatchGetMedia', {
      userId: 'g-alice',
      mediaIds: [id, '00000000-0000-4000-8000-000000000000'],
    });
    assert.deepEqual(
      batch.ok.media.map((m: { mediaId: string }) => m.mediaId),
      [id],
    );
    assert.deepEqual(batch.ok.missingIds, ['00000000-0000-4000-8000-000000000000']);
  });

  test('a session with purpose PROFILE makes a profile image the user can set as their avatar', async () => {
    const id = await uploadedViaGrpc('g-pat', { purpose: 'MEDIA_PURPOSE_PROFILE' });
    const got = await rpc('GetMedia', { userId: 'g-pat', mediaId: id });
    assert.equal(got.ok.media.purpose, 'MEDIA_PURPOSE_PROFILE');
    const pat = await t.user('g-pat');
    const record = await call(t.api(`/media/${id}`), { headers: pat.auth });
    assert.equal(record.body.purpose, 'profile');
    const set = await call(t.api('/profile/image'), {
      method: 'PUT',
      headers: pat.auth,
      json: { mediaId: id },
    });
    assert.ok(set.status === 200 || set.status === 202, set.text);
  });

  test('a PROFILE session for a video is refused with purpose_not_allowed', async () => {
    const video = await rpc('CreateUploadSession', {
      userId: 'g-pat',
      fileName: 'v.mp4',
      mimeType: 'video/mp4',
      bytes: 1000,
      purpose: 'MEDIA_PURPOSE_PROFILE',
    });
    assert.equal(video.err?.code, grpc.status.INVALID_ARGUMENT);
    assert.equal(video.err?.mediaryCode, 'purpose_not_allowed');
  });

  test('validate, attach and detach against an entity of the calling service', async () => {
    const a = await uploadedViaGrpc('g-carol');
    const pending = await rpc('CreateUploadSession', {
      userId: 'g-carol',
      fileName: 'p.jpg',
      mimeType: 'image/jpeg',
      bytes: 10,
    });
    const bobs = await uploadedViaGrpc('g-dan');
    const check = await rpc('ValidateAttachable', {
      userId: 'g-carol',
      mediaIds: [a, pending.ok.media.mediaId, bobs],
    });
    assert.equal(check.ok.ok, false);
    assert.deepEqual(check.ok.problems, [
      { mediaId: pending.ok.media.mediaId, problem: 'not_uploaded' },
      { mediaId: bobs, problem: 'not_found' },
    ]);
    assert.equal((await rpc('ValidateAttachable', { userId: 'g-carol', mediaIds: [a] })).ok.ok, true);

    const attached = await rpc('AttachMedia', { userId: 'g-carol', mediaIds: [a], entity: 'post:42' });
    assert.equal(attached.err, null, attached.err?.message);
    assert.equal(attached.ok.media[0].attachedTo, 'post:42');
    // Attaching again to the same entity is idempotent; to another is refused, all or nothing.
    assert.equal(
      (await rpc('AttachMedia', { userId: 'g-carol', mediaIds: [a], entity: 'post:42' })).err,
      null,
    );
    const elsewhere = await rpc('AttachMedia', { userId: 'g-carol', mediaIds: [a], entity: 'post:43' });
    assert.equal(elsewhere.err?.code, grpc.status.FAILED_PRECONDITION);
    assert.equal(elsewhere.err?.mediaryCode, 'media_not_attachable');
    // Mediary's own posts see the attachment too.
    const carol = await t.user('g-carol');
    const post = await call(t.api('/posts'), {
      method: 'POST',
      headers: carol.auth,
      json: { mediaIds: [a] },
    });
    assert.equal(post.status, 409, post.text);
    assert.deepEqual(post.body.error.details.problems, [{ mediaId: a, problem: 'attached' }]);

    assert.equal(
      (await rpc('DetachMedia', { userId: 'g-carol', mediaIds: [a], entity: 'post:43' })).ok.detached,
      0,
    );
    assert.equal(
      (await rpc('DetachMedia', { userId: 'g-carol', mediaIds: [a], entity: 'post:42' })).ok.detached,
      1,
    );
    assert.equal((await rpc('ValidateAttachable', { userId: 'g-carol', mediaIds: [a] })).ok.ok, true);
  });

  test('delete: another user’s media are refused and kept', async () => {
    const a = await uploadedViaGrpc('g-erin');
    const refused = await rpc('DeleteMedia', { userId: 'g-frank', mediaIds: [a] });
    assert.equal(refused.err?.code, grpc.status.NOT_FOUND);
    assert.equal((await rpc('GetMedia', { userId: 'g-erin', mediaId: a })).err, null);
  });

  test('delete: the owner’s media are gone', async () => {
    const a = await uploadedViaGrpc('g-erin');
    assert.equal((await rpc('DeleteMedia', { userId: 'g-erin', mediaIds: [a] })).ok.deleted, 1);
    assert.equal((await rpc('GetMedia', { userId: 'g-erin', mediaId: a })).err?.code, grpc.status.NOT_FOUND);
  });

  test('bad input is INVALID_ARGUMENT with our code, and changes nothing', async () => {
    const cases: [string, unknown][] = [
      ['GetMedia', { userId: 'u', mediaId: 'not-a-uuid' }],
      ['GetMedia', { userId: '', mediaId: crypto.randomUUID() }],
      ['BatchGetMedia', { userId: 'u', mediaIds: [] }],
      ['AttachMedia', { userId: 'u', mediaIds: [crypto.randomUUID()], entity: '' }],
      ['CreateUploadSession', { userId: 'u', fileName: 'x', mimeType: 'text/html', bytes: 5 }],
      ['CreateUploadSession', { userId: 'u', fileName: 'x', mimeType: 'image/jpeg', bytes: 5, sha256: 'zz' }],
    ];
    for (const [method, req] of cases) {
      const res = await rpc(method, req);
      assert.equal(
        res.err?.code,
        grpc.status.INVALID_ARGUMENT,
        `${method} ${JSON.stringify(req)}: ${res.err?.message}`,
      );
      assert.ok(res.err?.mediaryCode, 'our error code travels along');
    }
    const rows = await t.server.database.pool.query(`SELECT 1 FROM media WHERE owner_user_id = 'u'`);
    assert.equal(rows.rowCount, 0);
  });

  test('deadlines and cancellation reach the client as gRPC statuses', async () => {
    const past = await rpc(
      'GetMedia',
      { userId: 'u', mediaId: crypto.randomUUID() },
      { deadline: new Date(Date.now() - 1000) },
    );
    assert.equal(past.err?.code, grpc.status.DEADLINE_EXCEEDED);
    const cancelled = await rpc(
      'BatchGetMedia',
      { userId: 'u', mediaIds: [crypto.randomUUID()] },
      { cancelAfterMs: 0 },
    );
    assert.equal(cancelled.err?.code, grpc.status.CANCELLED);
    // The server is still fine afterwards.
    assert.equal((await rpc('BatchGetMedia', { userId: 'u', mediaIds: [crypto.randomUUID()] })).err, null);
  });

  test('every code of the error table has exactly one gRPC status', () => {
    for (const code of Object.keys(ERRORS) as ErrorCode[]) {
      assert.notEqual(grpcStatusOf(code), grpc.status.UNKNOWN, code);
      assert.notEqual(grpcStatusOf(code), grpc.status.OK, code);
    }
    assert.equal(grpcStatusOf('not_found'), grpc.status.NOT_FOUND);
    assert.equal(grpcStatusOf('rate_limited'), grpc.status.RESOURCE_EXHAUSTED);
  });

  test('the proto passes buf lint and has no breaking change against the released descriptor', async () => {
    await run('npx', ['buf', 'lint'], { cwd: PROTO_DIR });
    await run('npx', ['buf', 'breaking', '--against', 'released/mediary-v1.binpb'], { cwd: PROTO_DIR });
    // The check can fail: a copy with a field renumbered is a breaking change.
    const copy = await tempDir('mediary-proto-');
    await cp(PROTO_DIR, copy, { recursive: true });
    const file = path.join(copy, 'mediary/v1/media.proto');
    await writeFile(
      file,
      (await readFile(file, 'utf8')).replace('string media_id = 2;', 'string media_id = 9;'),
    );
    await assert.rejects(
      run('npx', ['buf', 'breaking', '--against', 'released/mediary-v1.binpb'], { cwd: copy }),
    );
  });
});
