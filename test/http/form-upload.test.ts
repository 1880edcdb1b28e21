/**
 * One-request uploads (multipart/form-data, issue 18): session, bytes and completion in one POST,
 * on the local store and on Ceph S3 (a file above the multipart threshold included). Idempotent on
 * Idempotency-Key and messageId; bad input is a 4xx that leaves no open session and no object.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { startCeph, mediary, type Ceph } from '../helpers/ceph.ts';
import { fixture } from '../helpers/files.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

const JPEG = fixture('cameras/Nikon_D70.jpg');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

let local: TestServer;
let ceph: Ceph;
let s3: TestServer;
before(async () => {
  ceph = await startCeph();
  // One at a time, each assigned as soon as it runs: after() closes whatever started.
  local = await startTestServer({
    MAX_IMAGE_BYTES: String(8 * 1024 * 1024),
    MAX_VIDEO_BYTES: String(40 * 1024 * 1024),
  });
  s3 = await startTestServer(ceph.serverEnv('mediary-form-test', { WORKER_ENABLED: 'false' }));
  const setup = await mediary(['storage', 'setup'], s3.env);
  assert.equal(setup.code, 0, setup.stderr);
});
after(async () => {
  await Promise.all([local?.close(), s3?.close()]);
  await ceph?.stop();
});

/** A FormData POST as a browser or `curl -F` sends it: fields first, then the file. */
function form(
  t: TestServer,
  auth: Record<string, string>,
  fields: Record<string, string>,
  file: { bytes: Uint8Array; name: string; type: string } | undefined,
  headers: Record<string, string> = {},
) {
  const fd = new FormData();
  for (const [k, v] of Object.entries(fields)) fd.append(k, v);
  if (file) fd.append('file', new Blob([new Uint8Array(file.bytes)], { type: file.type }), file.name);
  return call(t.api('/media/form'), { method: 'POST', headers: { ...auth, ...headers }, body: fd });
}

async function openSessions(t: TestServer, auth: Record<string, string>): Promise<number> {
  const usage = await call(t.api('/users/me/usage'), { headers: auth });
  assert.equal(usage.status, 200, usage.text);
  return usage.body.openSessions as number;
}

for (const which of ['local', 's3'] as const) {
  describe(`one-request form upload (${which})`, () => {
    const server = () => (which === 'local' ? local : s3);

    test('fields then the file: 201 with the media, the stored bytes are the file', async () => {
      const t = server();
      const u = await t.user(`form-${which}-a`);
      const res = await form(
        t,
        u.auth,
        { bytes: String(JPEG.length) },
        { bytes: JPEG, name: 'nikon.jpg', type: 'image/jpeg' },
      );
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.fileName, 'nikon.jpg');
      assert.equal(res.body.mimeType, 'image/jpeg');
      assert.match(res.body.status, /^(UPLOADED|PROCESSING|READY)$/);
      assert.equal(res.body.sha256, sha(JPEG));
      const dl = await fetch(t.api(`/media/${res.body.mediaId}/download?mode=proxy`), { headers: u.auth });
      assert.equal(dl.status, 200);
      assert.equal(sha(new Uint8Array(await dl.arrayBuffer())), sha(JPEG));
    });

    test('idempotent on Idempotency-Key: the replay is 200 with the same media, nothing new', async () => {
      const t = server();
      const u = await t.user(`form-${which}-b`);
      const send = () =>
        form(
          t,
          u.auth,
          { bytes: String(JPEG.length) },
          { bytes: JPEG, name: 'a.jpg', type: 'image/jpeg' },
          {
            'idempotency-key': 'form-1',
          },
        );
      const first = await send();
      assert.equal(first.status, 201, first.text);
      const again = await send();
      assert.equal(again.status, 200, again.text);
      assert.equal(again.body.mediaId, first.body.mediaId);
      const listed = await call(t.api('/users/me/media'), { headers: u.auth });
      assert.equal(listed.body.items.length, 1);
    });

    describe('more bytes than declared', () => {
      let t: TestServer;
      let u: Awaited<ReturnType<TestServer['user']>>;
      let res: Awaited<ReturnType<typeof call>>;

      test('are refused with 413 as they stream', async () => {
        t = server();
        u = await t.user(`form-${which}-c`);
        res = await form(t, u.auth, { bytes: '1000' }, { bytes: JPEG, name: 'a.jpg', type: 'image/jpeg' });
        assert.equal(res.status, 413, res.text);
        assert.equal(res.body.error.code, 'upload_too_large');
      });

      test('cancel the session, leaving none open', async () => {
        assert.equal(await openSessions(t, u.auth), 0, 'no session left open');
        const listed = await call(t.api('/users/me/media?status=FAILED'), { headers: u.auth });
        assert.equal(listed.status, 200, listed.text);
        for (const m of listed.body.items) assert.equal(m.error?.code, 'cancelled');
      });
    });
  });
}

describe('one-request form upload: bad input (local)', () => {
  test('each is a clear 4xx and leaves no open session', async () => {
    const u = await local.user('form-bad');
    const file = { bytes: JPEG, name: 'a.jpg', type: 'image/jpeg' };
    const cases: [string, Promise<Awaited<ReturnType<typeof call>>>, number, string][] = [
      ['no bytes field', form(local, u.auth, {}, file), 400, 'validation_failed'],
      [
        'unknown field',
        form(local, u.auth, { bytes: String(JPEG.length), colour: 'red' }, file),
        400,
        'validation_failed',
      ],
      ['bytes not a number', form(local, u.auth, { bytes: 'many' }, file), 400, 'validation_failed'],
      [
        'no file',
        form(local, u.auth, { bytes: '10', fileName: 'a.jpg', mimeType: 'image/jpeg' }, undefined),
        400,
        'validation_failed',
      ],
      [
        'over the type limit (declared)',
        form(local, u.auth, { bytes: String(9 * 1024 * 1024) }, file),
        413,
        'file_too_large',
      ],
      [
        'not the declared type',
        form(
          local,
          u.auth,
          { bytes: '2048' },
          { bytes: randomBytes(2048), name: 'x.jpg', type: 'image/jpeg' },
        ),
        422,
        'type_mismatch',
      ],
      ...(['x', '--abc\r\nContent-Disposition: form-data; name="bytes"\r\n\r\n1', '--abc--'] as const).map(
        (body): (typeof cases)[number] => [
          `a multipart body that is not one: ${JSON.stringify(body)}`,
          call(local.api('/media/form'), {
            method: 'POST',
            headers: { ...u.auth, 'content-type': 'multipart/form-data; boundary=abc' },
            body,
          }),
          400,
          body === '--abc--' ? 'validation_failed' : 'malformed_request',
        ],
      ),
      [
        'JSON instead of a form',
        call(local.api('/media/form'), { method: 'POST', headers: u.auth, json: { bytes: 1 } }),
        415,
        'unsupported_media_type',
      ],
    ];
    for (const [what, pending, status, code] of cases) {
      const res = await pending;
      assert.equal(res.status, status, `${what}: ${res.text}`);
      assert.equal(res.body.error.code, code, what);
    }
    assert.equal(await openSessions(local, u.auth), 0);
    const anon = await form(local, {}, { bytes: String(JPEG.length) }, file);
    assert.equal(anon.status, 401);
  });

  test('a device replays by messageId', async () => {
    const dev = await local.device('form-cam');
    const send = () =>
      form(
        local,
        dev.auth,
        { bytes: String(JPEG.length), messageId: 'm-1' },
        { bytes: JPEG, name: 'c.jpg', type: 'image/jpeg' },
      );
    const first = await send();
    assert.equal(first.status, 201, first.text);
    const again = await send();
    assert.equal(again.status, 200);
    assert.equal(again.body.mediaId, first.body.mediaId);
  });
});

describe('one-request form upload: a file above the multipart threshold (s3)', () => {
  test('17 MiB streams through to the bucket in one request', async () => {
    const u = await s3.user('form-big');
    const big = Buffer.concat([JPEG, randomBytes(17 * 1024 * 1024 - JPEG.length)]);
    const res = await form(
      s3,
      u.auth,
      { bytes: String(big.length) },
      { bytes: big, name: 'big.jpg', type: 'image/jpeg' },
    );
    assert.equal(res.status, 201, res.text);
    assert.equal(res.body.sha256, sha(big));
    assert.equal(res.body.bytes, big.length);
  });
});
