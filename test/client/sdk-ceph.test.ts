/**
 * The Node SDK, `mediary upload` and the camera agent against a real server with
 * STORAGE_BACKEND=s3 on a real Ceph RADOS Gateway. Every S3 request (the server's and the
 * client's presigned PUTs) passes through a loopback proxy that keeps the Host header (SigV4 signs
 * it), counts part uploads and can delay or break them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateBucketCommand, HeadObjectCommand, ListPartsCommand, S3Client } from '@aws-sdk/client-s3';
import { Agent } from '../../src/agent/agent.ts';
import { Spool } from '../../src/agent/spool.ts';
import { FileStateStore, MediaryClient, uploadFile, type Progress } from '../../src/client/node.ts';
import { createLogger } from '../../src/log.ts';
import { BIN } from '../helpers/process.ts';
import { type Ceph, startCeph } from '../helpers/ceph.ts';
import { fixture, sha256 } from '../helpers/files.ts';
import { MiB, MULTIPART_ENV, videoBytes } from '../helpers/multipart-suite.ts';
import { startProxy, type Proxy } from '../helpers/proxy.ts';
import { call, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';

const BUCKET = 'mediary-sdk-test';
const JPEG = fixture('cameras/Canon_40D.jpg');
/** Presigned URLs live 10 s (the least the server allows), so expiry can be tested in a test. */
const URL_TTL_SECONDS = 10;
const FAST_RETRY = { retries: 6, baseDelayMs: 50, maxDelayMs: 500 };

let ceph: Ceph;
let s3proxy: Proxy;
let s3: S3Client;
let t: TestServer;
let dir: string;

before(async () => {
  ceph = await startCeph();
  s3proxy = await startProxy(0, { preserveHost: true });
  s3proxy.setTarget(ceph.env.S3_ENDPOINT!);
  s3 = new S3Client({
    endpoint: ceph.env.S3_ENDPOINT,
    region: ceph.env.S3_REGION,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  // A new bucket is private; nothing else is needed for presigned uploads.
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  t = await startTestServer(
    ceph.serverEnv(BUCKET, {
      ...MULTIPART_ENV,
      // The worker runs: captures and the JPEG are processed to READY through the bucket.
      WORKER_ENABLED: 'true',
      // The server talks S3 through the proxy too, so the URLs it signs point at the proxy.
      S3_ENDPOINT: s3proxy.url,
      PART_URL_TTL_SECONDS: String(URL_TTL_SECONDS),
      UPLOAD_URL_TTL_SECONDS: String(URL_TTL_SECONDS),
    }),
  );
  dir = await tempDir('mediary-sdk-ceph-');
});
after(async () => {
  await t?.close();
  await s3proxy?.close();
  s3?.destroy();
  await ceph?.stop();
});

async function fileOf(name: string, bytes: Buffer): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, bytes);
  return p;
}

/** S3 PUTs the proxy saw since `from`: parts (`?partNumber=`) or single objects. */
const s3Puts = (from: number) =>
  s3proxy.seen.slice(from).filter((s) => s.method === 'PUT' && s.path.startsWith(`/${BUCKET}/`));
const s3PartPuts = (from: number) => s3Puts(from).filter((s) => s.part !== undefined);

async function multipartRow(mediaId: string) {
  const { rows } = await t.server.database.pool.query<{ upload_id: string; storage_key: string }>(
    'SELECT upload_id, storage_key FROM multipart_uploads WHERE media_id = $1',
    [mediaId],
  );
  return rows[0]!;
}

async function download(mediaId: string, auth: Record<string, string>): Promise<Buffer> {
  const res = await fetch(t.api(`/media/${mediaId}/download?mode=proxy`), { headers: auth });
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

describe('the Node SDK on Ceph (S3)', () => {
  test('a JPEG goes up as one presigned PUT straight to the bucket and is processed to READY', async () => {
    const device = await t.device('cam-single');
    const from = s3proxy.seen.length;
    const result = await uploadFile(await fileOf('one.jpg', JPEG), {
      server: t.base,
      key: device.key,
      stateStore: null,
      wait: { timeoutMs: 60_000 },
    });
    assert.equal(result.multipart, false);
    assert.equal(result.status, 'READY', JSON.stringify(result.media.error));
    assert.equal(result.sha256, sha256(JPEG));
    assert.equal(result.media.storageBackend, 's3');
    // The original went up in one PUT to its key (the worker's variants are other keys).
    const { rows } = await t.server.database.pool.query<{ storage_key: string }>(
      'SELECT storage_key FROM media WHERE id = $1',
      [result.mediaId],
    );
    const original = `/${BUCKET}/${rows[0]!.storage_key}`;
    assert.deepEqual(
      s3Puts(from)
        .filter((s) => s.path === original)
        .map((s) => s.status),
      [200],
    );
    assert.deepEqual(s3PartPuts(from), []);
    assert.equal(sha256(await download(result.mediaId, device.auth)), sha256(JPEG));
  });

  describe('40 MiB', () => {
    let device: Awaited<ReturnType<TestServer['device']>>;
    let data: Buffer;
    let from: number;
    const events: Progress[] = [];
    let result: Awaited<ReturnType<typeof uploadFile>>;

    test('goes up as 8 presigned parts, each sent once straight to the bucket', async () => {
      device = await t.device('cam-40');
      data = videoBytes(40 * MiB);
      const file = await fileOf('big.mp4', data);
      from = s3proxy.seen.length;
      s3proxy.peakPartsInFlight = 0;
      result = await uploadFile(file, {
        server: t.base,
        key: device.key,
        concurrency: 4,
        stateStore: new FileStateStore(path.join(dir, 'state-40')),
        onProgress: (p) => events.push(p),
      });
      assert.equal(result.status, 'UPLOADED');
      assert.equal(result.multipart, true);
      assert.equal(result.partsSent, 8);
      assert.equal(result.sha256, sha256(data));

      const puts = s3PartPuts(from);
      assert.deepEqual(
        puts.map((p) => p.part).sort((a, b) => a! - b!),
        [1, 2, 3, 4, 5, 6, 7, 8],
        'each part sent once, straight to the bucket',
      );
      assert.ok(puts.every((p) => p.status === 200));
    });

    test('at most 4 parts are in flight, and they go in parallel', () => {
      assert.ok(s3proxy.peakPartsInFlight <= 4, `at most 4 in flight (saw ${s3proxy.peakPartsInFlight})`);
      assert.ok(s3proxy.peakPartsInFlight >= 2, `parts went in parallel (saw ${s3proxy.peakPartsInFlight})`);
    });

    test('progress is monotonic and complete', () => {
      const uploading = events.filter((e) => e.phase !== 'hashing');
      for (let i = 1; i < uploading.length; i++) {
        assert.ok(uploading[i]!.bytesSent >= uploading[i - 1]!.bytesSent, `monotonic at event ${i}`);
        assert.ok(uploading[i]!.partsDone >= uploading[i - 1]!.partsDone);
      }
      assert.ok(uploading.some((e) => e.bytesSent > 0 && e.bytesSent < data.length));
      const last = uploading.at(-1)!;
      assert.equal(last.bytesSent, data.length);
      assert.equal(last.partsDone, 8);
      assert.equal(last.etaSeconds, 0);
    });

    test('the ETags from S3 are accepted: the object is the joined multipart upload', async () => {
      // The object in the bucket is the joined multipart upload (S3's "<md5 of md5s>-8" ETag).
      const key = (await multipartRow(result.mediaId)).storage_key;
      const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
      assert.equal(head.ContentLength, data.length);
      assert.match(head.ETag ?? '', /-8"?$/);
      assert.equal(sha256(await download(result.mediaId, device.auth)), sha256(data));
      assert.deepEqual(await readdir(path.join(dir, 'state-40')), [], 'resume state removed when done');
    });
  });

  test('`mediary upload` killed mid-upload and run again sends only the parts S3 does not list', async () => {
    const device = await t.device('cam-resume');
    const data = videoBytes(40 * MiB);
    const file = await fileOf('resume.mp4', data);
    const stateDir = path.join(dir, 'state-resume');
    const args = [BIN, 'upload', file, '--concurrency', '1', '--state-dir', stateDir, '--json'];
    const env = { ...process.env, MEDIARY_SERVER: t.base, MEDIARY_KEY: device.key };
    // Slow S3 part PUTs so the kill lands in the middle.
    s3proxy.misbehave((_req, { part }) => (part !== undefined ? { delayMs: 300 } : undefined));
    const first = spawn(process.execPath, args, { env, stdio: 'ignore' });
    let mediaId: string | undefined;
    let stored: number[] = [];
    const deadline = Date.now() + 60_000;
    try {
      while (stored.length < 3) {
        assert.ok(Date.now() < deadline, 'three parts stored in time');
        assert.equal(first.exitCode, null, 'the first upload is still running');
        await sleep(50);
        if (!mediaId) {
          const list = await call(t.api(`/devices/${device.id}/media`), { headers: device.auth });
          mediaId = list.body.items?.[0]?.mediaId;
          continue;
        }
        const parts = await call(t.api(`/media/${mediaId}/parts`), { headers: device.auth });
        stored = (parts.body?.parts ?? []).map((p: { partNumber: number }) => p.partNumber);
      }
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
    } finally {
      if (first.exitCode === null && first.signalCode === null) first.kill('SIGKILL');
      s3proxy.misbehave();
    }
    assert.ok(mediaId);
    // A part whose bytes had all left the killed process may still land: wait until S3 is settled.
    let last = '';
    for (let same = 0; same < 3; await sleep(400)) {
      const now = JSON.stringify(
        (await call(t.api(`/media/${mediaId}/parts`), { headers: device.auth })).body,
      );
      same = now === last ? same + 1 : 0;
      last = now;
    }
    // What S3 itself lists (ListParts) is what the server lists, and what must not be sent again.
    const listed = await call(t.api(`/media/${mediaId}/parts`), { headers: device.auth });
    stored = listed.body.parts.map((p: { partNumber: number }) => p.partNumber);
    const row = await multipartRow(mediaId);
    const inS3 = await s3.send(
      new ListPartsCommand({ Bucket: BUCKET, Key: row.storage_key, UploadId: row.upload_id }),
    );
    assert.deepEqual(
      (inS3.Parts ?? []).map((p) => p.PartNumber),
      stored,
      'the server lists exactly the parts S3 holds',
    );
    assert.ok(stored.length >= 3 && stored.length < 8, `killed mid-way (${stored.length} parts stored)`);

    const from2 = s3proxy.seen.length;
    const second = spawn(process.execPath, [...args.slice(0, 3), '--concurrency', '4', ...args.slice(5)], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    second.stdout.on('data', (c: Buffer) => (out += c.toString()));
    second.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise((r) => second.once('exit', r));
    assert.equal(code, 0, err);
    const [result] = JSON.parse(out);
    assert.equal(result.mediaId, mediaId, 'the same session was resumed');
    assert.equal(result.status, 'UPLOADED');
    assert.equal(result.partsSkipped, stored.length);

    const sent2 = s3PartPuts(from2).map((p) => p.part!);
    assert.deepEqual(
      sent2.filter((n) => stored.includes(n)),
      [],
      `no stored part sent again (stored ${stored.join()}, sent ${sent2.join()})`,
    );
    assert.deepEqual(
      [...stored, ...sent2].sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6, 7, 8],
      'each missing part sent exactly once',
    );
    const list = await call(t.api(`/devices/${device.id}/media`), { headers: device.auth });
    assert.equal(list.body.items.length, 1);
    assert.equal(sha256(await download(mediaId, device.auth)), sha256(data));
    assert.deepEqual(await readdir(stateDir), []);
  });

  test('presigned URLs that expire before S3 sees them (403): re-signed and the upload finishes', async () => {
    const device = await t.device('cam-expiry');
    const big = videoBytes(12 * MiB); // 3 parts
    const small = JPEG;
    const from = s3proxy.seen.length;
    // The first attempt of part 2 and of the single PUT reach S3 only after their URL expired.
    s3proxy.misbehave((req, { part, attempt }) =>
      req.method === 'PUT' &&
      attempt === 1 &&
      (part === 2 || (part === undefined && req.url?.includes('X-Amz')))
        ? { delayMs: (URL_TTL_SECONDS + 2) * 1000 }
        : undefined,
    );
    const retried: string[] = [];
    const retry = { ...FAST_RETRY, onRetry: (r: { what: string }) => retried.push(r.what) };
    try {
      const [a, b] = await Promise.all([
        uploadFile(await fileOf('expiry.mp4', big), {
          client: new MediaryClient({ server: t.base, key: device.key, retry }),
          stateStore: null,
          concurrency: 3,
        }),
        uploadFile(await fileOf('expiry.jpg', small), {
          client: new MediaryClient({ server: t.base, key: device.key, retry }),
          stateStore: null,
        }),
      ]);
      assert.equal(a.status, 'UPLOADED');
      assert.equal(b.status, 'UPLOADED');
      assert.equal(sha256(await download(a.mediaId, device.auth)), sha256(big));
      assert.equal(sha256(await download(b.mediaId, device.auth)), sha256(small));
    } finally {
      s3proxy.misbehave();
    }
    const refused = s3Puts(from).filter((s) => s.status === 403);
    assert.equal(refused.length, 2, 'S3 refused exactly the two late requests');
    assert.ok(retried.some((w) => w.startsWith('PUT part 2')));
    assert.ok(retried.some((w) => w.startsWith('PUT ') && !w.startsWith('PUT part')));
  });
});

describe('the camera agent on Ceph (S3)', () => {
  test('captures survive an S3 outage and a replay after a crash: each arrives exactly once, READY', async () => {
    const device = await t.device('cam-agent');
    const spoolDir = await tempDir('mediary-spool-');
    const silent = createLogger('silent', 2);
    const spool = new Spool(spoolDir, { maxBytes: 1e9, maxFiles: 100 }, silent);
    const agent = new Agent({
      client: new MediaryClient({ server: t.base, key: device.key, retry: FAST_RETRY }),
      spool,
      logger: silent,
      cameraId: 'front',
      concurrency: 2,
      maxBackoffMs: 1000,
    });
    await spool.init();
    const capture = async (i: number) => {
      const f = spool.incomingPath('jpg');
      // Each capture is unique: a trailer after the JPEG.
      await writeFile(f, Buffer.concat([JPEG, Buffer.from(`capture ${i}`)]));
      return spool.commit(f, new Date(Date.UTC(2026, 4, 1, 12, 0, i)));
    };
    const entries = [await capture(0), await capture(1), await capture(2)];

    // The bucket is unreachable for uploads for a while: S3 answers 503 to every PUT.
    s3proxy.misbehave((req) => (req.method === 'PUT' ? { status: 503 } : undefined));
    try {
      await assert.rejects(agent.drain(true));
      assert.equal((await spool.list()).length, 3, 'nothing was dropped from the spool');
    } finally {
      s3proxy.misbehave();
    }
    assert.equal(await agent.drain(true), true);
    assert.equal((await spool.list()).length, 0);

    // The process died after completing capture 0 but before removing it: it is spooled again.
    const again = await capture(0);
    assert.equal(again.messageId, entries[0]!.messageId);
    assert.equal(await agent.drain(true), true);

    const list = await call(t.api(`/devices/${device.id}/media?limit=100`), { headers: device.auth });
    const items = list.body.items as { mediaId: string; messageId: string; sha256: string }[];
    assert.equal(items.length, 3, 'every capture arrived, none twice');
    assert.deepEqual(new Set(items.map((i) => i.messageId)), new Set(entries.map((e) => e.messageId)));
    const client = new MediaryClient({ server: t.base, key: device.key });
    for (const item of items) {
      const s = await client.waitFor(item.mediaId, { timeoutMs: 60_000, intervalMs: 200 });
      assert.equal(s.status, 'READY', JSON.stringify(s.error));
    }
  });
});
