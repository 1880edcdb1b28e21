/**
 * The Node SDK and `mediary upload` against a real server (local backend, multipart with 5 MiB
 * parts), through a loopback proxy that counts requests and breaks connections on purpose.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { FileStateStore, MediaryClient, uploadFile, type Progress } from '../../src/client/node.ts';
import { LocalObjectStore } from '../../src/storage/local.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { PublicUrls } from '../../src/http/urls.ts';
import { sha256 } from '../helpers/files.ts';
import { asBody, MiB, MULTIPART_ENV, videoBytes } from '../helpers/multipart-suite.ts';
import { startProxy, type Proxy } from '../helpers/proxy.ts';
import { call, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/mediary.mjs');
const FAST_RETRY = { retries: 6, baseDelayMs: 50, maxDelayMs: 500 };

let t: TestServer;
let proxy: Proxy;
let dir: string;
/** Direct to the server, bypassing the proxy (for looking behind the client's back). */
let direct: (p: string) => string;

before(async () => {
  proxy = await startProxy();
  // The server signs URLs for its public URL: the proxy, so every byte passes through it.
  t = await startTestServer({ ...MULTIPART_ENV, PUBLIC_URL: proxy.url });
  direct = (p) => `http://127.0.0.1:${t.config.port}/api/v1${p}`;
  proxy.setTarget(`http://127.0.0.1:${t.config.port}`);
  dir = await tempDir('mediary-sdk-');
});
after(async () => {
  await proxy.close();
  await t.close();
});

async function fileOf(name: string, bytes: Buffer): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, bytes);
  return p;
}

function partPuts(from = 0) {
  return proxy.seen.slice(from).filter((s) => s.part !== undefined);
}

describe('the Node SDK', () => {
  describe('a 40 MiB file', () => {
    let device: Awaited<ReturnType<TestServer['device']>>;
    let data: Buffer;
    let from: number;
    const events: Progress[] = [];
    let result: Awaited<ReturnType<typeof uploadFile>>;

    test('goes up as 8 parts, each sent once', async () => {
      device = await t.device('cam-40');
      data = videoBytes(40 * MiB);
      const file = await fileOf('big.mp4', data);
      from = proxy.seen.length;
      proxy.misbehave();
      result = await uploadFile(file, {
        server: proxy.url,
        key: device.key,
        concurrency: 4,
        stateStore: new FileStateStore(path.join(dir, 'state-40')),
        onProgress: (p) => events.push(p),
      });
      assert.match(result.status, /^(UPLOADED|PROCESSING|READY)$/);
      assert.equal(result.multipart, true);
      assert.equal(result.partsSent, 8);
      assert.equal(result.sha256, sha256(data));

      const puts = partPuts(from);
      assert.deepEqual(
        [...new Set(puts.map((p) => p.part))].sort((a, b) => a! - b!),
        [1, 2, 3, 4, 5, 6, 7, 8],
      );
      assert.equal(puts.length, 8, 'each part sent once');
    });

    test('at most 4 parts are in flight, and they go in parallel', () => {
      assert.ok(proxy.peakPartsInFlight <= 4, `at most 4 parts in flight (saw ${proxy.peakPartsInFlight})`);
      assert.ok(proxy.peakPartsInFlight >= 2, `parts went in parallel (saw ${proxy.peakPartsInFlight})`);
    });

    test('progress is monotonic and ends at the total', () => {
      const uploading = events.filter((e) => e.phase !== 'hashing');
      assert.ok(uploading.length >= 8, `progress events: ${uploading.length}`);
      for (let i = 1; i < uploading.length; i++) {
        assert.ok(uploading[i]!.bytesSent >= uploading[i - 1]!.bytesSent, `monotonic at event ${i}`);
        assert.ok(uploading[i]!.partsDone >= uploading[i - 1]!.partsDone);
      }
      const last = uploading.at(-1)!;
      assert.equal(last.bytesSent, data.length);
      assert.equal(last.totalBytes, data.length);
      assert.equal(last.partsDone, 8);
      assert.equal(last.etaSeconds, 0);
      assert.ok(
        uploading.some((e) => e.bytesPerSecond > 0),
        'a rate was measured',
      );
      assert.ok(
        uploading.some((e) => e.bytesSent > 0 && e.bytesSent < data.length),
        'intermediate progress was reported',
      );
    });

    test('the download is the same bytes, and the resume state is removed', async () => {
      const dl = await fetch(direct(`/media/${result.mediaId}/download?mode=proxy`), {
        headers: device.auth,
      });
      assert.equal(sha256(Buffer.from(await dl.arrayBuffer())), sha256(data));
      assert.deepEqual(await readdir(path.join(dir, 'state-40')), [], 'resume state removed when done');
    });
  });

  test('connections dropped mid-part and a lost session response: retries finish it, no duplicate session', async () => {
    const device = await t.device('cam-flaky');
    const data = videoBytes(12 * MiB); // 3 parts
    const file = await fileOf('flaky.mp4', data);
    const from = proxy.seen.length;
    proxy.misbehave((req, { part, attempt }) => {
      // The session is created, but its answer never reaches the client.
      if (req.method === 'POST' && req.url === '/api/v1/media' && attempt === 1)
        return { loseResponse: true };
      if (part === 2 && attempt <= 2) return { dropAfterBytes: 1 * MiB };
      if (part === 3 && attempt === 1) return { dropAfterBytes: 64 * 1024 };
      return undefined;
    });
    const retries: string[] = [];
    try {
      const result = await uploadFile(file, {
        server: proxy.url,
        key: device.key,
        concurrency: 2,
        stateStore: null,
        retry: { ...FAST_RETRY, onRetry: (r) => retries.push(r.what) },
      });
      assert.match(result.status, /^(UPLOADED|PROCESSING|READY)$/);
      assert.equal(result.created, false, 'the retried creation was an idempotent replay');
      assert.equal(result.sha256, sha256(data));
    } finally {
      proxy.misbehave();
    }
    const seen = proxy.seen.slice(from);
    assert.equal(seen.filter((s) => s.outcome === 'lost-response').length, 1);
    // Parts 2 and 3 were really cut (on a loaded machine the client may give up on an attempt
    // before the proxy's cut point, so there may be fewer cuts than the rules allow).
    const cut = seen.filter((s) => s.outcome === 'dropped').map((s) => s.part);
    assert.ok(cut.includes(2) && cut.includes(3), `cut parts: ${cut.join()}`);
    assert.ok(retries.some((r) => r.startsWith('POST /media')));
    // Every cut upload was retried; a loaded machine may time out (and retry) more.
    assert.ok(retries.filter((r) => r.startsWith('PUT part')).length >= cut.length, retries.join(', '));
    const list = await call(direct(`/devices/${device.id}/media`), { headers: device.auth });
    assert.equal(list.body.items.length, 1, 'exactly one media record');
    assert.match(list.body.items[0].status, /^(UPLOADED|PROCESSING|READY)$/);
  });

  test('a resumed upload whose parts the store already joined (the server never heard) completes without resending', async () => {
    const device = await t.device('cam-joined');
    const data = videoBytes(12 * MiB); // 3 parts
    const file = await fileOf('joined.mp4', data);
    // A first run: session and every part stored…
    const s = await call(direct('/media'), {
      method: 'POST',
      headers: device.auth,
      json: {
        fileName: 'joined.mp4',
        mimeType: 'video/mp4',
        bytes: data.length,
        sha256: sha256(data),
        messageId: 'joined-1',
      },
    });
    assert.equal(s.status, 201, s.text);
    const mediaId = s.body.mediaId as string;
    const signed = await call(direct(`/media/${mediaId}/parts`), {
      method: 'POST',
      headers: device.auth,
      json: { partNumbers: [1, 2, 3] },
    });
    const parts: { partNumber: number; etag: string }[] = [];
    for (const u of signed.body.parts as {
      partNumber: number;
      url: string;
      headers: Record<string, string>;
    }[]) {
      const start = (u.partNumber - 1) * 5 * MiB;
      const res = await fetch(u.url.replace(proxy.url, `http://127.0.0.1:${t.config.port}`), {
        method: 'PUT',
        headers: u.headers,
        body: asBody(data.subarray(start, Math.min(data.length, start + 5 * MiB))),
      });
      assert.equal(res.status, 200, await res.text());
      parts.push({ partNumber: u.partNumber, etag: res.headers.get('etag')! });
    }
    // …then the store joined them but the server never recorded it (its answer was lost).
    const { rows } = await t.server.database.pool.query<{ storage_key: string; upload_id: string }>(
      'SELECT storage_key, upload_id FROM multipart_uploads WHERE media_id = $1',
      [mediaId],
    );
    const store = new LocalObjectStore(
      t.config.storage.dir,
      new PublicUrls(new UrlSigner('x'.repeat(32)), t.base),
    );
    await store.completeMultipart(rows[0]!.storage_key, rows[0]!.upload_id, parts);

    const from = proxy.seen.length;
    const result = await uploadFile(file, {
      server: proxy.url,
      key: device.key,
      messageId: 'joined-1',
      stateStore: null,
      retry: FAST_RETRY,
    });
    assert.equal(result.mediaId, mediaId, 'the same session');
    assert.match(result.status, /^(UPLOADED|PROCESSING|READY)$/);
    assert.equal(result.partsSent, 0);
    assert.equal(partPuts(from).length, 0, 'no part sent again');
    const m = await call(direct(`/media/${mediaId}`), { headers: device.auth });
    assert.equal(m.body.sha256, sha256(data));
    assert.equal(m.body.bytes, data.length);
  });

  test('`mediary upload` killed mid-upload and run again sends only the missing parts', async () => {
    const device = await t.device('cam-resume');
    const data = videoBytes(40 * MiB); // 8 parts of 5 MiB
    const file = await fileOf('resume.mp4', data);
    const stateDir = path.join(dir, 'state-resume');
    const args = [BIN, 'upload', file, '--concurrency', '1', '--state-dir', stateDir, '--json'];
    const env = { ...process.env, MEDIARY_SERVER: proxy.url, MEDIARY_KEY: device.key };
    // Slow the parts down so the kill lands in the middle.
    proxy.misbehave((_req, { part }) => (part !== undefined ? { delayMs: 250 } : undefined));
    const from1 = proxy.seen.length;
    const first = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'ignore'] });
    let mediaId: string | undefined;
    let stored: number[] = [];
    const deadline = Date.now() + 60_000;
    try {
      while (stored.length < 3) {
        assert.ok(Date.now() < deadline, 'three parts stored in time');
        assert.equal(first.exitCode, null, 'the first upload is still running');
        await sleep(50);
        if (!mediaId) {
          const list = await call(direct(`/devices/${device.id}/media`), { headers: device.auth });
          mediaId = list.body.items?.[0]?.mediaId;
          continue;
        }
        const parts = await call(direct(`/media/${mediaId}/parts`), { headers: device.auth });
        stored = (parts.body?.parts ?? []).map((p: { partNumber: number }) => p.partNumber);
      }
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
    } finally {
      if (first.exitCode === null) first.kill('SIGKILL');
      proxy.misbehave();
    }
    // What the server holds now is what the second run must not send again. A part whose bytes
    // were all in flight at the kill can still land just after it: wait until the listing settles.
    const listStored = async () =>
      (
        (await call(direct(`/media/${mediaId}/parts`), { headers: device.auth })).body.parts as {
          partNumber: number;
        }[]
      )
        .map((p) => p.partNumber)
        .join();
    let previous = await listStored();
    for (let i = 0; i < 20; i++) {
      await sleep(300);
      const now = await listStored();
      if (now === previous) break;
      previous = now;
    }
    stored = previous.split(',').filter(Boolean).map(Number);
    assert.ok(stored.length >= 3 && stored.length < 8, `killed mid-way (${stored.length} parts stored)`);
    assert.ok(partPuts(from1).length < 8, 'the first run did not send every part');

    const from2 = proxy.seen.length;
    const second = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    second.stdout.on('data', (c: Buffer) => (out += c.toString()));
    second.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise((r) => second.once('exit', r));
    assert.equal(code, 0, err);
    const [row] = JSON.parse(out);
    assert.equal(row.mediaId, mediaId, 'the same session was resumed');
    assert.match(row.status, /^(UPLOADED|PROCESSING|READY)$/);
    assert.equal(row.partsSkipped, stored.length);

    const sent2 = partPuts(from2).map((p) => p.part!);
    assert.deepEqual(
      sent2.filter((n) => stored.includes(n)),
      [],
      `no stored part sent again (stored ${stored.join()}, sent ${sent2.join()})`,
    );
    assert.deepEqual(
      [...new Set([...stored, ...sent2])].sort((a, b) => a - b),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    assert.equal(sent2.length, 8 - stored.length, 'each missing part sent exactly once');
    const list = await call(direct(`/devices/${device.id}/media`), { headers: device.auth });
    assert.equal(list.body.items.length, 1);
    assert.equal(list.body.items[0].sha256, sha256(data));
    assert.deepEqual(await readdir(stateDir), []);
  });

  test('AbortSignal stops a multipart upload and cancels its session', async () => {
    const user = await t.user('u-abort');
    const data = videoBytes(20 * MiB);
    const file = await fileOf('abort.mp4', data);
    const stateDir = path.join(dir, 'state-abort');
    const ac = new AbortController();
    proxy.misbehave((_req, { part }) => (part !== undefined && part > 1 ? { delayMs: 300 } : undefined));
    try {
      await assert.rejects(
        uploadFile(file, {
          server: proxy.url,
          key: user.token,
          concurrency: 1,
          signal: ac.signal,
          stateStore: new FileStateStore(stateDir),
          onProgress: (p) => {
            if (p.partsDone >= 1) ac.abort();
          },
        }),
        (err: Error) => err.name === 'AbortError',
      );
    } finally {
      proxy.misbehave();
    }
    const list = await call(direct('/users/me/media'), { headers: user.auth });
    assert.equal(list.body.items.length, 1);
    const mediaId = list.body.items[0].mediaId;
    const media = await call(direct(`/media/${mediaId}`), { headers: user.auth });
    assert.equal(media.body.status, 'FAILED', 'the session was cancelled');
    assert.deepEqual(await readdir(stateDir), [], 'no resume state left behind');
  });

  describe('below the threshold', () => {
    let client: MediaryClient;
    let blob: Blob;
    let a: Awaited<ReturnType<typeof uploadFile>>;
    const opts = () => ({ client, idempotencyKey: 'idem-1', stateStore: null, fileName: 'one.mp4' }) as const;

    test('a file goes up as a single PUT', async () => {
      const user = await t.user('u-single');
      const data = videoBytes(1 * MiB);
      client = new MediaryClient({ server: proxy.url, key: user.token, retry: FAST_RETRY });
      blob = new Blob([asBody(data)], { type: 'video/mp4' });
      a = await uploadFile(blob, { ...opts(), wait: { until: ['UPLOADED', 'PROCESSING', 'READY'] } });
      assert.equal(a.multipart, false);
      assert.equal(a.created, true);
      assert.ok(['UPLOADED', 'PROCESSING', 'READY'].includes(a.status));
    });

    test('a user retry with the same Idempotency-Key is the same media', async () => {
      const b = await uploadFile(blob, opts());
      assert.equal(b.mediaId, a.mediaId);
      assert.equal(b.created, false);
      assert.equal(b.partsSent, 0, 'nothing sent again');
    });

    test('the wait helper gives up at its deadline with a clear error', async () => {
      // The wait helper gives up at its deadline with a clear error rather than hanging.
      await assert.rejects(
        client.waitFor(a.mediaId, { until: ['DELETED'], timeoutMs: 300, intervalMs: 50 }),
        /still|is /,
      );
    });
  });
});
