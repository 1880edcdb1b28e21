/**
 * The tus 1.0 endpoint by hand-written requests, run against every store (local disk, Ceph S3):
 * the protocol, and bad input answered with the status tus names, our JSON error shape, and
 * nothing half-written (the offset HEAD answers is unchanged and the upload still finishes).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { sha256 } from '../helpers/files.ts';
import { asBody, MiB } from '../helpers/multipart-suite.ts';
import { call, type TestServer } from '../helpers/server.ts';

type Auth = Record<string, string>;
const TUS = { 'tus-resumable': '1.0.0' };
const OCTETS = { ...TUS, 'content-type': 'application/offset+octet-stream' };
export const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Environment of the servers the suite runs on: small parts and checkpoints, no worker. */
export const TUS_ENV = {
  MULTIPART_PART_SIZE_BYTES: String(5 * MiB),
  TUS_CHECKPOINT_BYTES: String(MiB),
  WORKER_ENABLED: 'false',
  MAX_IMAGE_BYTES: String(30 * MiB),
};

/** A JPEG of `bytes` bytes: a small noise image, then random bytes after its end (decoders stop there). */
export async function paddedJpeg(bytes: number): Promise<Buffer> {
  const head = await noiseJpeg(320, 240);
  return Buffer.concat([head, randomBytes(bytes - head.length)]);
}

export async function noiseJpeg(width: number, height: number): Promise<Buffer> {
  return sharp({
    create: {
      width,
      height,
      channels: 3,
      background: '#468',
      noise: { type: 'gaussian', mean: 128, sigma: 60 },
    },
  })
    .jpeg({ quality: 100 })
    .toBuffer();
}

export function assertErrorShape(res: { body: any; headers: Headers }, code: string): void {
  assert.equal(res.body?.error?.code, code, JSON.stringify(res.body));
  assert.equal(typeof res.body.error.message, 'string');
  assert.equal(typeof res.body.error.requestId, 'string');
  assert.equal(res.headers.get('tus-resumable'), '1.0.0');
}

export function tusProtocolSuite(name: string, ctx: () => TestServer): void {
  const t = () => ctx();
  const meta = (fileName: string, type: string, extra: Record<string, string> = {}) =>
    Object.entries({ filename: fileName, filetype: type, ...extra })
      .map(([k, v]) => `${k} ${b64(v)}`)
      .join(',');

  async function create(auth: Auth, length: number, metadata: string, extra: Record<string, string> = {}) {
    const res = await call(t().api('/tus/'), {
      method: 'POST',
      headers: { ...auth, ...TUS, 'upload-length': String(length), 'upload-metadata': metadata, ...extra },
    });
    assert.equal(res.status, 201, res.text);
    const location = res.headers.get('location')!;
    assert.match(location, /\/api\/v1\/tus\/[0-9a-f-]{36}$/);
    return location;
  }
  const head = (url: string, auth: Auth) => call(url, { method: 'HEAD', headers: { ...auth, ...TUS } });
  const patch = (
    url: string,
    auth: Auth,
    offset: number,
    bytes: Buffer,
    extra: Record<string, string> = {},
  ) =>
    call(url, {
      method: 'PATCH',
      headers: { ...auth, ...OCTETS, 'upload-offset': String(offset), ...extra },
      body: asBody(bytes),
    });
  const mediaRow = async (id: string) =>
    (await t().server.database.pool.query('SELECT * FROM media WHERE id = $1', [id])).rows[0];
  const idOf = (url: string) => url.split('/').pop()!;
  const offsetOf = async (url: string, auth: Auth) =>
    Number((await head(url, auth)).headers.get('upload-offset'));

  describe(`tus on ${name}`, () => {
    test('OPTIONS tells the version, extensions, maximum size and checksum algorithms', async () => {
      const res = await call(t().api('/tus/'), { method: 'OPTIONS' });
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('tus-version'), '1.0.0');
      assert.deepEqual(res.headers.get('tus-extension')?.split(','), [
        'creation',
        'creation-with-upload',
        'termination',
        'expiration',
        'checksum',
      ]);
      assert.equal(res.headers.get('tus-max-size'), String(t().config.uploads.maxVideoBytes));
      assert.ok(res.headers.get('tus-checksum-algorithm')?.split(',').includes('sha256'));
    });

    test('create, PATCH in pieces (across part boundaries, one with Upload-Checksum), HEAD, complete: UPLOADED with the sha256', async () => {
      const jpeg = await paddedJpeg(6 * MiB + 12_345);
      const u = await t().user(`tus-${randomUUID()}`);
      const metadata = meta('noise.jpg', 'image/jpeg', { sha256: sha256(jpeg), reason: 'tus' });
      const url = await create(u.auth, jpeg.length, metadata);
      const h = await head(url, u.auth);
      assert.equal(h.status, 200);
      assert.equal(h.headers.get('upload-offset'), '0');
      assert.equal(h.headers.get('upload-length'), String(jpeg.length));
      assert.equal(h.headers.get('upload-metadata'), metadata);
      assert.equal(h.headers.get('cache-control'), 'no-store');
      assert.ok(Date.parse(h.headers.get('upload-expires')!) > Date.now());

      const cuts = [0, 3 * MiB, 5 * MiB + 7, jpeg.length];
      for (let i = 0; i < cuts.length - 1; i++) {
        const piece = jpeg.subarray(cuts[i], cuts[i + 1]);
        const extra: Record<string, string> =
          i === 1
            ? { 'upload-checksum': `sha256 ${createHash('sha256').update(piece).digest('base64')}` }
            : {};
        const res = await patch(url, u.auth, cuts[i]!, piece, extra);
        assert.equal(res.status, 204, res.text);
        assert.equal(res.headers.get('upload-offset'), String(cuts[i + 1]));
        assert.equal(res.headers.get('tus-resumable'), '1.0.0');
      }
      const m = await mediaRow(idOf(url));
      assert.equal(m.status, 'UPLOADED');
      assert.equal(m.content_sha256, sha256(jpeg));
      assert.equal(m.file_name, 'noise.jpg');
      assert.equal(m.reason, 'tus');
      const rec = await call(t().api(`/media/${idOf(url)}`), { headers: u.auth });
      assert.equal(rec.status, 200);
      assert.equal(rec.body.bytes, jpeg.length);
      // The stored original is these bytes.
      const dl = await fetch(t().api(`/media/${idOf(url)}/download?mode=proxy`), { headers: u.auth });
      assert.equal(sha256(Buffer.from(await dl.arrayBuffer())), sha256(jpeg));
      // The leftovers are gone; HEAD still answers (complete).
      const row = await t().server.database.pool.query('SELECT 1 FROM tus_uploads WHERE media_id = $1', [
        idOf(url),
      ]);
      assert.equal(row.rowCount, 0);
      assert.equal(await offsetOf(url, u.auth), jpeg.length);
    });

    test('creation-with-upload: the POST body is the first bytes', async () => {
      const small = await noiseJpeg(64, 64);
      const u = await t().user(`tus-${randomUUID()}`);
      const res = await call(t().api('/tus'), {
        method: 'POST',
        headers: {
          ...u.auth,
          ...OCTETS,
          'upload-length': String(small.length),
          'upload-metadata': meta('s.jpg', 'image/jpeg'),
        },
        body: asBody(small),
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.headers.get('upload-offset'), String(small.length));
      const m = await mediaRow(idOf(res.headers.get('location')!));
      assert.equal(m.status, 'UPLOADED');
      assert.equal(m.content_sha256, sha256(small));
    });

    test('missing Tus-Resumable: 412 with Tus-Version, nothing created', async () => {
      const u = await t().user(`tus-${randomUUID()}`);
      const before = (await t().server.database.pool.query('SELECT count(*)::int AS n FROM media')).rows[0].n;
      const res = await call(t().api('/tus/'), {
        method: 'POST',
        headers: { ...u.auth, 'upload-length': '100', 'upload-metadata': meta('a.jpg', 'image/jpeg') },
      });
      assert.equal(res.status, 412);
      assertErrorShape(res, 'tus_version_unsupported');
      assert.equal(res.headers.get('tus-version'), '1.0.0');
      const after = (await t().server.database.pool.query('SELECT count(*)::int AS n FROM media')).rows[0].n;
      assert.equal(after, before);
    });

    test('bad input leaves the upload as it was: wrong offset 409, over-size 413, bad checksum 460, wrong type 415', async () => {
      const data = await noiseJpeg(300, 300);
      const u = await t().user(`tus-${randomUUID()}`);
      const url = await create(u.auth, data.length, meta('b.jpg', 'image/jpeg'));
      const first = 1000;
      assert.equal((await patch(url, u.auth, 0, data.subarray(0, first))).status, 204);

      const wrong = await patch(url, u.auth, 10, data.subarray(10, 20));
      assert.equal(wrong.status, 409);
      assertErrorShape(wrong, 'upload_offset_mismatch');
      assert.equal(wrong.body.error.details.offset, first);

      const over = await patch(url, u.auth, first, Buffer.concat([data.subarray(first), Buffer.alloc(10)]));
      assert.equal(over.status, 413);
      assertErrorShape(over, 'upload_too_large');

      const piece = data.subarray(first, first + 500);
      const bad = await patch(url, u.auth, first, piece, {
        'upload-checksum': `sha256 ${createHash('sha256').update('other').digest('base64')}`,
      });
      assert.equal(bad.status, 460);
      assertErrorShape(bad, 'tus_checksum_mismatch');

      const algo = await patch(url, u.auth, first, piece, { 'upload-checksum': `crc99 ${b64('x')}` });
      assert.equal(algo.status, 400);
      assertErrorShape(algo, 'checksum_algorithm_unsupported');

      const type = await call(url, {
        method: 'PATCH',
        headers: { ...u.auth, ...TUS, 'content-type': 'image/jpeg', 'upload-offset': String(first) },
        body: asBody(piece),
      });
      assert.equal(type.status, 415);
      assertErrorShape(type, 'unsupported_media_type');

      assert.equal(await offsetOf(url, u.auth), first, 'no refused byte was kept');
      // The rest, correctly: the file is whole and right.
      const rest = await patch(url, u.auth, first, data.subarray(first));
      assert.equal(rest.status, 204, rest.text);
      const m = await mediaRow(idOf(url));
      assert.equal(m.status, 'UPLOADED');
      assert.equal(m.content_sha256, sha256(data));
    });

    test('over the size limit at creation: 413, nothing created', async () => {
      const u = await t().user(`tus-${randomUUID()}`);
      const res = await call(t().api('/tus/'), {
        method: 'POST',
        headers: {
          ...u.auth,
          ...TUS,
          'upload-length': String(t().config.uploads.maxImageBytes + 1),
          'upload-metadata': meta('big.jpg', 'image/jpeg'),
        },
      });
      assert.equal(res.status, 413);
      assertErrorShape(res, 'file_too_large');
      const n = await t().server.database.pool.query(
        'SELECT count(*)::int AS n FROM media WHERE owner_user_id = $1',
        [u.id],
      );
      assert.equal(n.rows[0].n, 0);
    });

    test('metadata without filetype, and deferred length: 400', async () => {
      const u = await t().user(`tus-${randomUUID()}`);
      const noType = await call(t().api('/tus/'), {
        method: 'POST',
        headers: { ...u.auth, ...TUS, 'upload-length': '10', 'upload-metadata': `filename ${b64('x.jpg')}` },
      });
      assert.equal(noType.status, 400);
      assertErrorShape(noType, 'validation_failed');
      const deferred = await call(t().api('/tus/'), {
        method: 'POST',
        headers: {
          ...u.auth,
          ...TUS,
          'upload-defer-length': '1',
          'upload-metadata': meta('x.jpg', 'image/jpeg'),
        },
      });
      assert.equal(deferred.status, 400);
      assertErrorShape(deferred, 'validation_failed');
    });

    test('unknown upload and someone else’s: 404', async () => {
      const u = await t().user(`tus-${randomUUID()}`);
      const other = await t().user(`tus-${randomUUID()}`);
      const unknown = await head(t().api(`/tus/${randomUUID()}`), u.auth);
      assert.equal(unknown.status, 404);
      const url = await create(u.auth, 100, meta('c.jpg', 'image/jpeg'));
      const theirs = await patch(url, other.auth, 0, Buffer.alloc(10));
      assert.equal(theirs.status, 404);
      assertErrorShape(theirs, 'not_found');
      assert.equal(await offsetOf(url, u.auth), 0);
    });

    test('expired: 410 on HEAD and PATCH, staged bytes dropped', async () => {
      const u = await t().user(`tus-${randomUUID()}`);
      const url = await create(u.auth, 5000, meta('d.jpg', 'image/jpeg'));
      assert.equal((await patch(url, u.auth, 0, Buffer.alloc(1000, 1))).status, 204);
      await t().server.database.pool.query(
        `UPDATE media SET upload_expires_at = now() - interval '1 minute' WHERE id = $1`,
        [idOf(url)],
      );
      const h = await head(url, u.auth);
      assert.equal(h.status, 410);
      const p = await patch(url, u.auth, 1000, Buffer.alloc(10));
      assert.equal(p.status, 410);
      assertErrorShape(p, 'upload_expired');
      const row = await t().server.database.pool.query('SELECT 1 FROM tus_uploads WHERE media_id = $1', [
        idOf(url),
      ]);
      assert.equal(row.rowCount, 0, 'the staging state is gone');
    });

    test('termination: 204, then the upload is gone (410) and the media FAILED (cancelled)', async () => {
      const u = await t().user(`tus-${randomUUID()}`);
      const url = await create(u.auth, 5000, meta('e.jpg', 'image/jpeg'));
      assert.equal((await patch(url, u.auth, 0, Buffer.alloc(100, 1))).status, 204);
      const del = await call(url, { method: 'DELETE', headers: { ...u.auth, ...TUS } });
      assert.equal(del.status, 204);
      assert.equal((await head(url, u.auth)).status, 410);
      const m = await mediaRow(idOf(url));
      assert.equal(m.status, 'FAILED');
      assert.equal(m.error.code, 'cancelled');
    });

    test('content that is not the declared type: the final PATCH answers 422, the media FAILED', async () => {
      const u = await t().user(`tus-${randomUUID()}`);
      const html = Buffer.from('<html><script>alert(1)</script></html>'.padEnd(4000, ' '));
      const url = await create(u.auth, html.length, meta('f.jpg', 'image/jpeg'));
      const res = await patch(url, u.auth, 0, html);
      assert.equal(res.status, 422);
      assertErrorShape(res, 'type_mismatch');
      assert.equal((await mediaRow(idOf(url))).status, 'FAILED');
    });

    test('a declared sha256 the bytes do not have: 422 checksum_mismatch, FAILED, no object', async () => {
      const data = await noiseJpeg(100, 100);
      const u = await t().user(`tus-${randomUUID()}`);
      const url = await create(
        u.auth,
        data.length,
        meta('g.jpg', 'image/jpeg', { sha256: sha256(Buffer.from('x')) }),
      );
      const res = await patch(url, u.auth, 0, data);
      assert.equal(res.status, 422);
      assertErrorShape(res, 'checksum_mismatch');
      const m = await mediaRow(idOf(url));
      assert.equal(m.status, 'FAILED');
      const dl = await call(t().api(`/media/${idOf(url)}/download?mode=proxy`), { headers: u.auth });
      assert.notEqual(dl.status, 200);
    });

    test('a second PATCH while one streams: 423, and the first one’s bytes are kept', async () => {
      const u = await t().user(`tus-${randomUUID()}`);
      const url = await create(u.auth, 10_000, meta('h.jpg', 'image/jpeg'));
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      /** The first PATCH: 2000 bytes, then its body waits on the gate. */
      const startFirst = () => {
        const body = new ReadableStream<Uint8Array>({
          async start(c) {
            c.enqueue(new Uint8Array(2000).fill(7));
            await gate;
            c.enqueue(new Uint8Array(1000).fill(8));
            c.close();
          },
        });
        const req = fetch(url, {
          method: 'PATCH',
          headers: { ...u.auth, ...OCTETS, 'upload-offset': '0' },
          body,
          duplex: 'half',
        } as RequestInit);
        const state: { settled?: string } = {};
        void req.then(
          async (r) => (state.settled = `the first PATCH ended early: ${r.status} ${await r.text()}`),
          (e: unknown) => (state.settled = `the first PATCH failed: ${String(e)}`),
        );
        return { req, state };
      };
      let first = startFirst();
      // The first PATCH holds the upload once its handler runs, which on a loaded machine can take
      // a while: the loop ends when the first PATCH ends (it cannot: its body waits on the gate) or
      // after a minute, not after a count. Empty: a second that gets in first changes nothing, but
      // the first, arriving while that second one holds the upload, is rightly refused with 423:
      // then the first starts again.
      const deadline = Date.now() + 60_000;
      let second = await patch(url, u.auth, 0, Buffer.alloc(0));
      while (second.status !== 423 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        if (first.state.settled?.startsWith('the first PATCH ended early: 423')) first = startFirst();
        else if (first.state.settled !== undefined) break;
        second = await patch(url, u.auth, 0, Buffer.alloc(0));
      }
      const settled = first.state.settled;
      assert.equal(settled, undefined);
      assert.equal(second.status, 423, second.text);
      assertErrorShape(second, 'upload_locked');
      release();
      const res = await first.req;
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('upload-offset'), '3000');
    });
  });
}
