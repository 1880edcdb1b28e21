/**
 * The multipart protocol through the HTTP API, run against every backend (local disk and Ceph):
 * the client flow must be identical whatever stores the bytes.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { before, describe, test } from 'node:test';
import { createStore } from '../../src/storage/factory.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { PublicUrls } from '../../src/http/urls.ts';
import type { ObjectStore } from '../../src/storage/types.ts';
import { mediary } from './ceph.ts';
import { sha256 } from './files.ts';
import { call, type TestServer } from './server.ts';

export const MiB = 1024 * 1024;
/**
 * Multipart above 5 MiB, 5 MiB parts: small files exercise every rule. No processing worker:
 * these suites assert the upload states (UPLOADED), which the worker would move on.
 */
export const MULTIPART_ENV = {
  MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
  MULTIPART_PART_SIZE_BYTES: String(5 * MiB),
  WORKER_ENABLED: 'false',
};

/** `n` bytes that sniff as an MP4 (an ftyp box, then noise). */
export function videoBytes(n: number): Buffer {
  const ftyp = Buffer.from('000000186674797069736f6d0000020069736f6d69736f32', 'hex');
  return Buffer.concat([ftyp, randomBytes(n - ftyp.length)]);
}

type Auth = Record<string, string>;
/** A Buffer as a fetch body (Node's Buffer typing does not satisfy DOM BodyInit). */
export const asBody = (b: Buffer) => new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.length);
interface PartUrl {
  partNumber: number;
  url: string;
  headers: Record<string, string>;
}

export function multipartProtocolSuite(backend: 'local' | 's3' | 'gcs', ctx: () => TestServer): void {
  const t = () => ctx();
  let storeCache: ObjectStore | undefined;
  /** The same store the server uses, for looking behind the API. */
  const store = () =>
    (storeCache ??= createStore(
      t().config,
      backend,
      new PublicUrls(new UrlSigner('unused-for-reads'), t().config.publicUrl),
    ));

  async function session(auth: Auth, data: Buffer, extra: Record<string, unknown> = {}) {
    const res = await call(t().api('/media'), {
      method: 'POST',
      headers: auth,
      json: {
        fileName: 'clip.mp4',
        mimeType: 'video/mp4',
        bytes: data.length,
        sha256: sha256(data),
        ...extra,
      },
    });
    assert.equal(res.status, 201, res.text);
    return res.body;
  }
  const sign = (auth: Auth, id: string, partNumbers: unknown) =>
    call(t().api(`/media/${id}/parts`), { method: 'POST', headers: auth, json: { partNumbers } });
  const listParts = (auth: Auth, id: string) => call(t().api(`/media/${id}/parts`), { headers: auth });
  const complete = (auth: Auth, id: string, parts?: unknown) =>
    call(t().api(`/media/${id}/complete`), {
      method: 'POST',
      headers: auth,
      json: parts === undefined ? {} : { parts },
    });
  const slice = (data: Buffer, partSize: number, n: number) =>
    data.subarray((n - 1) * partSize, n * partSize);
  async function putPart(part: PartUrl, body: Buffer) {
    const res = await fetch(part.url, { method: 'PUT', headers: part.headers, body: asBody(body) });
    const text = await res.text();
    return { status: res.status, etag: res.headers.get('etag'), text };
  }
  async function uploadParts(auth: Auth, id: string, data: Buffer, partSize: number, numbers: number[]) {
    const signed = await sign(auth, id, numbers);
    assert.equal(signed.status, 200, signed.text);
    return Promise.all(
      (signed.body.parts as PartUrl[]).map(async (p) => {
        const r = await putPart(p, slice(data, partSize, p.partNumber));
        assert.equal(r.status, 200, `part ${p.partNumber}: ${r.text}`);
        assert.ok(r.etag, 'the part answer carries an ETag header');
        return { partNumber: p.partNumber, etag: r.etag };
      }),
    );
  }
  const row = async (id: string) =>
    (await t().server.database.pool.query('SELECT * FROM media WHERE id = $1', [id])).rows[0];
  const jobs = async (id: string) =>
    (
      await t().server.database.pool.query(
        `SELECT count(*)::int AS n FROM pgboss.job WHERE name IN ('media-process', 'media-process-video') AND data->>'mediaId' = $1`,
        [id],
      )
    ).rows[0].n as number;
  async function openUploads(): Promise<string[]> {
    const ids: string[] = [];
    for await (const u of store().listMultipartUploads()) ids.push(u.uploadId);
    return ids;
  }
  const uploadIdOf = async (id: string) =>
    (
      await t().server.database.pool.query('SELECT upload_id FROM multipart_uploads WHERE media_id = $1', [
        id,
      ])
    ).rows[0].upload_id as string;

  describe(`multipart protocol (${backend})`, () => {
    test('a 50 MiB upload: 10 parts sent in parallel, completed, downloaded byte for byte', async () => {
      const dev = await t().device();
      const data = videoBytes(50 * MiB);
      const s = await session(dev.auth, data);
      assert.deepEqual(
        { method: s.upload.method, partSize: s.upload.partSize, partCount: s.upload.partCount },
        { method: 'MULTIPART', partSize: 5 * MiB, partCount: 10 },
      );
      assert.equal(s.upload.url, undefined);
      const numbers = Array.from({ length: 10 }, (_, i) => i + 1);
      const parts = await uploadParts(dev.auth, s.mediaId, data, 5 * MiB, numbers);
      const done = await complete(dev.auth, s.mediaId, parts);
      assert.equal(done.status, 200, done.text);
      assert.equal(done.body.status, 'UPLOADED');
      assert.equal(done.body.detectedMimeType, 'video/mp4');
      assert.equal(done.body.bytes, data.length);
      if (backend === 'local') {
        // Assembled by the API, so hashed on the way: verified now.
        assert.equal(done.body.sha256Verified, true);
        assert.equal((await row(s.mediaId)).content_sha256, sha256(data));
      } else {
        // Ceph and GCS cannot verify a sha256: completion must not claim it did.
        assert.equal(done.body.sha256Verified, false);
        assert.equal((await row(s.mediaId)).content_sha256, null);
      }
      assert.equal(await jobs(s.mediaId), 1);
      assert.ok(!(await openUploads()).includes(await uploadIdOf(s.mediaId)), 'no multipart upload left');

      const dl = await call(t().api(`/media/${s.mediaId}/download`), { headers: dev.auth });
      assert.equal(dl.status, 302);
      const got = await fetch(dl.headers.get('location')!);
      assert.equal(got.status, 200);
      assert.equal(got.headers.get('content-type'), 'video/mp4');
      assert.match(got.headers.get('content-disposition') ?? '', /^inline; filename="clip.mp4"/);
      assert.equal(sha256(Buffer.from(await got.arrayBuffer())), sha256(data));
    });

    test('an interrupted upload resumes: list stored parts, send only the missing ones', async () => {
      const dev = await t().device();
      const data = videoBytes(12 * MiB); // parts of 5, 5 and 2 MiB
      const s = await session(dev.auth, data, { messageId: 'resume-1' });
      const first = await uploadParts(dev.auth, s.mediaId, data, 5 * MiB, [1, 3]);
      // "The app restarts": all it has is the session (a replay gives the same plan back).
      const replay = await call(t().api('/media'), {
        method: 'POST',
        headers: dev.auth,
        json: {
          fileName: 'clip.mp4',
          mimeType: 'video/mp4',
          bytes: data.length,
          sha256: sha256(data),
          messageId: 'resume-1',
        },
      });
      assert.equal(replay.status, 200);
      assert.equal(replay.body.mediaId, s.mediaId);
      assert.deepEqual([replay.body.upload.method, replay.body.upload.partCount], ['MULTIPART', 3]);

      const listed = await listParts(dev.auth, s.mediaId);
      assert.equal(listed.status, 200, listed.text);
      assert.equal(listed.body.partSize, 5 * MiB);
      assert.equal(listed.body.partCount, 3);
      assert.deepEqual(
        listed.body.parts.map((p: { partNumber: number; size: number }) => [p.partNumber, p.size]),
        [
          [1, 5 * MiB],
          [3, 2 * MiB],
        ],
      );
      for (const p of first) {
        const stored = listed.body.parts.find((x: { partNumber: number }) => x.partNumber === p.partNumber);
        assert.equal(stored.etag.replaceAll('"', ''), p.etag.replaceAll('"', ''));
      }
      const have = new Set(listed.body.parts.map((p: { partNumber: number }) => p.partNumber));
      const missing = [1, 2, 3].filter((n) => !have.has(n));
      assert.deepEqual(missing, [2]);
      const rest = await uploadParts(dev.auth, s.mediaId, data, 5 * MiB, missing);
      const all = [
        ...listed.body.parts.map((p: { partNumber: number; etag: string }) => ({
          partNumber: p.partNumber,
          etag: p.etag,
        })),
        ...rest,
      ];
      const done = await complete(dev.auth, s.mediaId, all);
      assert.equal(done.status, 200, done.text);
      assert.equal(done.body.status, 'UPLOADED');
      const obj = await store().get((await row(s.mediaId)).storage_key);
      const chunks: Buffer[] = [];
      for await (const c of obj!) chunks.push(c as Buffer);
      assert.equal(sha256(Buffer.concat(chunks)), sha256(data), 'byte for byte');
    });

    describe('bad input and repeated completion', () => {
      type Part = Awaited<ReturnType<typeof uploadParts>>[number];
      type Snapshot = { status: string; parts: number[]; object: boolean };
      let dev: Awaited<ReturnType<TestServer['device']>>;
      let data: Buffer;
      let id: string;
      let parts: Part[];
      let initial: Snapshot;
      let good: Part[];
      let wrongEtag: Part[];
      const snapshot = async (): Promise<Snapshot> => ({
        status: (await row(id)).status,
        parts: (await listParts(dev.auth, id)).body.parts.map((p: { partNumber: number }) => p.partNumber),
        object: (await store().stat((await row(id)).storage_key)) !== undefined,
      });
      before(async () => {
        dev = await t().device();
        data = videoBytes(11 * MiB); // 3 parts
        const s = await session(dev.auth, data);
        id = s.mediaId;
      });

      test('signing bad part numbers is a clear 400', async () => {
        const r0 = await sign(dev.auth, id, [0]);
        assert.deepEqual([r0.status, r0.body.error.code], [400, 'validation_failed']);
        const r4 = await sign(dev.auth, id, [2, 4]);
        assert.deepEqual([r4.status, r4.body.error.code], [400, 'invalid_part_number']);
        assert.deepEqual(r4.body.error.details.partNumbers, [4]);
        const rMany = await sign(
          dev.auth,
          id,
          Array.from({ length: 101 }, () => 1),
        );
        assert.equal(rMany.status, 400);
        const rNone = await sign(dev.auth, id, []);
        assert.equal(rNone.status, 400);
      });

      test('a part of the wrong length is refused by whoever receives it (the store or the API)', async () => {
        const signed1 = (await sign(dev.auth, id, [1])).body.parts[0] as PartUrl;
        const short = await putPart(signed1, slice(data, 5 * MiB, 1).subarray(0, 1000));
        assert.ok(short.status >= 400 && short.status < 500, `short part → ${short.status}`);
      });

      test('completing with missing, out-of-range, repeated or unsent parts is a clear 4xx and changes nothing', async () => {
        parts = await uploadParts(dev.auth, id, data, 5 * MiB, [1, 2]);
        initial = await snapshot();
        assert.deepEqual(initial, { status: 'PENDING', parts: [1, 2], object: false });

        const noParts = await complete(dev.auth, id);
        assert.deepEqual([noParts.status, noParts.body.error.code], [400, 'validation_failed']);
        const incomplete = await complete(dev.auth, id, parts);
        assert.deepEqual([incomplete.status, incomplete.body.error.code], [400, 'parts_incomplete']);
        assert.deepEqual(incomplete.body.error.details.missing, [3]);
        const outOfRange = await complete(dev.auth, id, [
          ...parts,
          { partNumber: 3, etag: 'x' },
          { partNumber: 4, etag: 'x' },
        ]);
        assert.deepEqual([outOfRange.status, outOfRange.body.error.code], [400, 'invalid_part_number']);
        const dup = await complete(dev.auth, id, [...parts, parts[0]]);
        assert.deepEqual([dup.status, dup.body.error.code], [400, 'invalid_part_number']);
        const notUploaded = await complete(dev.auth, id, [...parts, { partNumber: 3, etag: '"abc"' }]);
        assert.deepEqual([notUploaded.status, notUploaded.body.error.code], [409, 'part_not_uploaded']);
        assert.deepEqual(notUploaded.body.error.details.missing, [3]);
        assert.deepEqual(await snapshot(), initial);
      });

      test('completing with a wrong ETag is 409 etag_mismatch and changes nothing', async () => {
        const [third] = await uploadParts(dev.auth, id, data, 5 * MiB, [3]);
        good = [...parts, third!].sort((a, b) => a.partNumber - b.partNumber);
        wrongEtag = good.map((p) =>
          p.partNumber === 2 ? { ...p, etag: '"0123456789abcdef0123456789abcdef"' } : p,
        );
        const mismatch = await complete(dev.auth, id, wrongEtag);
        assert.deepEqual([mismatch.status, mismatch.body.error.code], [409, 'etag_mismatch']);
        assert.deepEqual(mismatch.body.error.details.partNumbers, [2]);
        assert.deepEqual(await snapshot(), { ...initial, parts: [1, 2, 3] });
        assert.equal(await jobs(id), 0);
      });

      test('completing twice is idempotent: one job', async () => {
        const done = await complete(dev.auth, id, good);
        assert.equal(done.status, 200, done.text);
        assert.equal(done.body.status, 'UPLOADED');
        const again = await complete(dev.auth, id, good);
        // The worker may already be on it: the state moves on, the answer stays a 200.
        assert.equal(again.status, 200);
        assert.match(again.body.status, /^(UPLOADED|PROCESSING|READY)$/);
        const againBad = await complete(dev.auth, id, wrongEtag);
        assert.equal(againBad.status, 200);
        assert.match(againBad.body.status, /^(UPLOADED|PROCESSING|READY)$/);
        assert.equal(await jobs(id), 1, 'one job, however often completion is repeated');
      });

      test('after completion, signing parts or cancelling is 409 invalid_state', async () => {
        const late = await sign(dev.auth, id, [1]);
        assert.deepEqual([late.status, late.body.error.code], [409, 'invalid_state']);
        const lateCancel = await call(t().api(`/media/${id}/cancel`), {
          method: 'POST',
          headers: dev.auth,
          json: {},
        });
        assert.deepEqual([lateCancel.status, lateCancel.body.error.code], [409, 'invalid_state']);
      });

      test('someone else’s media is 404, never a hint it exists', async () => {
        const other = await t().device();
        assert.equal((await sign(other.auth, id, [1])).status, 404);
        assert.equal((await listParts(other.auth, id)).status, 404);
      });

      test('single uploads do not take parts: 409 not_multipart', async () => {
        const small = await call(t().api('/media'), {
          method: 'POST',
          headers: dev.auth,
          json: { fileName: 'a.mp4', mimeType: 'video/mp4', bytes: 1000 },
        });
        assert.equal(small.body.upload.method, 'PUT');
        const np = await sign(dev.auth, small.body.mediaId, [1]);
        assert.deepEqual([np.status, np.body.error.code], [409, 'not_multipart']);
        const npc = await complete(dev.auth, small.body.mediaId, [{ partNumber: 1, etag: 'x' }]);
        assert.deepEqual([npc.status, npc.body.error.code], [409, 'not_multipart']);
      });
    });

    test('a tampered part URL is refused', async () => {
      const dev = await t().device();
      // The last part is 100 bytes: a store that refuses before reading the body cannot stall us.
      const data = videoBytes(5 * MiB + 100);
      const s = await session(dev.auth, data);
      const part = (await sign(dev.auth, s.mediaId, [2])).body.parts[0] as PartUrl;
      const u = new URL(part.url);
      const sigParam = { s3: 'X-Amz-Signature', gcs: 'X-Goog-Signature', local: 'sig' }[backend];
      const sig = u.searchParams.get(sigParam)!;
      u.searchParams.set(sigParam, (sig[0] === 'a' ? 'b' : 'a') + sig.slice(1));
      const res = await putPart({ ...part, url: u.toString() }, slice(data, 5 * MiB, 2));
      assert.equal(res.status, 403);
      assert.deepEqual((await listParts(dev.auth, s.mediaId)).body.parts, []);
      const honest = await putPart(part, slice(data, 5 * MiB, 2));
      assert.equal(honest.status, 200, honest.text);
      assert.deepEqual(
        (await listParts(dev.auth, s.mediaId)).body.parts.map((p: { size: number }) => p.size),
        [100],
      );
    });

    test('cancel aborts the multipart upload and marks the media FAILED (cancelled)', async () => {
      const dev = await t().device();
      const data = videoBytes(11 * MiB);
      const s = await session(dev.auth, data);
      await uploadParts(dev.auth, s.mediaId, data, 5 * MiB, [1, 2]);
      const uploadId = await uploadIdOf(s.mediaId);
      assert.ok((await openUploads()).includes(uploadId));
      const res = await call(t().api(`/media/${s.mediaId}/cancel`), {
        method: 'POST',
        headers: dev.auth,
        json: {},
      });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.body.status, 'FAILED');
      assert.equal(res.body.error.code, 'cancelled');
      assert.ok(!(await openUploads()).includes(uploadId), 'the store holds no multipart upload for it');
      const again = await call(t().api(`/media/${s.mediaId}/cancel`), { method: 'POST', headers: dev.auth });
      assert.equal(again.status, 200, 'cancelling twice is harmless');
      const sign2 = await sign(dev.auth, s.mediaId, [3]);
      assert.deepEqual([sign2.status, sign2.body.error.code], [409, 'invalid_state']);
      const done = await complete(dev.auth, s.mediaId, [{ partNumber: 1, etag: 'x' }]);
      assert.equal(done.body.status, 'FAILED');
    });

    test('the sweeper (mediary storage sweep): expired sessions aborted and FAILED, orphan objects removed', async () => {
      const dev = await t().device();
      const data = videoBytes(6 * MiB);
      const s = await session(dev.auth, data);
      await uploadParts(dev.auth, s.mediaId, data, 5 * MiB, [1]);
      const uploadId = await uploadIdOf(s.mediaId);
      const kept = await session(dev.auth, data); // a live session, not expired
      await t().server.database.pool.query(
        `UPDATE media SET upload_expires_at = now() - interval '1 minute' WHERE id = $1`,
        [s.mediaId],
      );
      const orphan = Buffer.from('no row points at me');
      await store().put('orphans/left-behind.bin', Readable.from([orphan]), {
        contentType: 'application/octet-stream',
        bytes: orphan.length,
      });
      // A completed upload's object has a row and must survive.
      const small = videoBytes(1000);
      const single = await call(t().api('/media'), {
        method: 'POST',
        headers: dev.auth,
        json: { fileName: 's.mp4', mimeType: 'video/mp4', bytes: small.length },
      });
      const up = await fetch(single.body.upload.url, {
        method: 'PUT',
        headers: single.body.upload.headers,
        body: asBody(small),
      });
      assert.equal(up.status, 200, await up.text());
      assert.equal((await complete(dev.auth, single.body.mediaId)).body.status, 'UPLOADED');

      // Regression: derived objects are referenced from other tables (media_variants.key), not
      // media.storage_key; the sweeper must keep them.
      /** A poster variant object in the store and the media_variants row that references it. */
      const posterVariant = async (mediaId: string) => {
        const key = `variants/${mediaId}/poster.webp`;
        await store().put(key, Readable.from([orphan]), { contentType: 'image/webp', bytes: orphan.length });
        await t().server.database.pool.query(
          `INSERT INTO media_variants (media_id, name, format, key, width, height, bytes) VALUES ($1, 'poster', 'webp', $2, 1, 1, $3)`,
          [mediaId, key, orphan.length],
        );
        return key;
      };
      const variantKey = await posterVariant(single.body.mediaId as string);
      // A deleted media whose derived objects survived its DELETE (the store failed then): its
      // variant row no longer counts as a reference.
      const gone = await call(t().api('/media'), {
        method: 'POST',
        headers: dev.auth,
        json: { fileName: 'g.mp4', mimeType: 'video/mp4', bytes: small.length },
      });
      const goneKey = await posterVariant(gone.body.mediaId as string);
      await t().server.database.pool.query(`UPDATE media SET status = 'DELETED' WHERE id = $1`, [
        gone.body.mediaId,
      ]);
      const res = await mediary(['storage', 'sweep'], { ...t().env, ORPHAN_GRACE_SECONDS: '0' });
      assert.equal(res.code, 0, res.stderr);
      const report = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
      assert.ok(report.expiredSessions >= 1 && report.orphansRemoved >= 1, res.stdout);

      const swept = await row(s.mediaId);
      assert.equal(swept.status, 'FAILED');
      assert.equal(swept.error.code, 'upload_expired');
      assert.ok(!(await openUploads()).includes(uploadId), 'expired multipart upload aborted');
      assert.equal((await row(kept.mediaId)).status, 'PENDING');
      assert.ok((await openUploads()).includes(await uploadIdOf(kept.mediaId)), 'live upload untouched');
      assert.equal(await store().stat('orphans/left-behind.bin'), undefined, 'orphan removed');
      assert.ok(await store().stat((await row(single.body.mediaId)).storage_key), 'object with a row kept');
      assert.ok(await store().stat(variantKey), 'an object referenced by media_variants.key kept');
      assert.equal(await store().stat(goneKey), undefined, 'a deleted media’s variant object removed');
    });
  });
}
