/**
 * The Node SDK's session handling against a real server (local backend, 5 MiB parts) through a
 * loopback proxy: resume keyed by who uploads rather than by the credential (a refreshed token
 * resumes the same session), token providers, hashing progress, pause/resume, type inference.
 */
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { mintUserToken } from '../../src/auth/principals.ts';
import {
  FileStateStore,
  MediaryClient,
  principalOf,
  sniffMimeType,
  uploadFile,
  type Progress,
} from '../../src/client/node.ts';
import { sha256 } from '../helpers/files.ts';
import { asBody, MiB, MULTIPART_ENV, videoBytes } from '../helpers/multipart-suite.ts';
import { startProxy, type Proxy } from '../helpers/proxy.ts';
import { call, JWT_SECRET, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';

const FAST_RETRY = { retries: 6, baseDelayMs: 50, maxDelayMs: 500 };

let t: TestServer;
let proxy: Proxy;
let dir: string;
let direct: (p: string) => string;

before(async () => {
  proxy = await startProxy();
  t = await startTestServer({ ...MULTIPART_ENV, PUBLIC_URL: proxy.url });
  direct = (p) => `http://127.0.0.1:${t.config.port}/api/v1${p}`;
  proxy.setTarget(`http://127.0.0.1:${t.config.port}`);
  dir = await tempDir('mediary-sdk-session-');
});
after(async () => {
  await proxy?.close();
  await t?.close();
});

async function fileOf(name: string, bytes: Buffer): Promise<string> {
  const p = path.join(dir, name);
  await writeFile(p, bytes);
  return p;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const partPuts = (from: number) => proxy.seen.slice(from).filter((s) => s.part !== undefined);

async function userMedia(token: string) {
  const list = await call(direct('/users/me/media'), { headers: bearer(token) });
  assert.equal(list.status, 200, list.text);
  return list.body.items as { mediaId: string; status: string; sha256: string | null; mimeType: string }[];
}

describe('resume across a token refresh', () => {
  test('a user whose JWT was refreshed between interruption and resume continues the same session', async () => {
    const userId = 'u-refreshed';
    const before = await mintUserToken(JWT_SECRET, userId, 3600);
    const data = videoBytes(20 * MiB); // 4 parts
    const file = await fileOf('refresh.mp4', data);
    const stateStore = new FileStateStore(path.join(dir, 'state-refresh'));
    // The first run is interrupted: parts 3 and 4 meet an outage, and it gives up.
    proxy.misbehave((_req, { part }) => (part !== undefined && part >= 3 ? { status: 503 } : undefined));
    try {
      await assert.rejects(
        uploadFile(file, {
          server: proxy.url,
          key: before,
          concurrency: 1,
          stateStore,
          retry: { retries: 0 },
        }),
        (err: Error) => err.name !== 'AbortError',
      );
    } finally {
      proxy.misbehave();
    }
    const [pending] = await userMedia(before);
    assert.equal(pending?.status, 'PENDING');

    // Later, with a new token for the same user.
    const after = await mintUserToken(JWT_SECRET, userId, 7200);
    assert.notEqual(after, before);
    assert.equal(principalOf(after), principalOf(before));
    const from = proxy.seen.length;
    const result = await uploadFile(file, { server: proxy.url, key: after, stateStore, retry: FAST_RETRY });
    assert.equal(result.mediaId, pending.mediaId, 'the same session resumed');
    assert.equal(result.created, false);
    assert.equal(result.partsSkipped, 2);
    assert.deepEqual(
      partPuts(from)
        .map((p) => p.part)
        .sort(),
      [3, 4],
      'only the missing parts were sent',
    );
    const items = await userMedia(after);
    assert.equal(items.length, 1, 'no second session');
    assert.equal(items[0]!.sha256, sha256(data));
    assert.match(items[0]!.status, /^(UPLOADED|PROCESSING|READY)$/);
  });

  describe('a token provider', () => {
    const userId = 'u-provider';
    let expired: string;
    let calls = 0;
    const tokens: string[] = [];
    let result: Awaited<ReturnType<typeof uploadFile>>;

    test('is asked per request, and again after a 401', async () => {
      expired = await mintUserToken(JWT_SECRET, userId, -60);
      const token = async () => {
        calls++;
        // First an expired token (what a cache hands out just after expiry; the SDK reads the
        // principal from the first and sends the second), then fresh ones, each different.
        const tok = calls <= 2 ? expired : await mintUserToken(JWT_SECRET, userId, 3600 + calls);
        tokens.push(tok);
        return tok;
      };
      const data = videoBytes(12 * MiB); // 3 parts
      const file = await fileOf('provider.mp4', data);
      result = await uploadFile(file, {
        server: proxy.url,
        token,
        stateStore: new FileStateStore(path.join(dir, 'state-provider')),
        retry: FAST_RETRY,
      });
      assert.match(result.status, /^(UPLOADED|PROCESSING|READY)$/);
      // create + list + sign + complete at least, plus the retry after the 401.
      assert.ok(calls >= 5, `provider called per request (${calls} calls)`);
      assert.equal(new Set(tokens.slice(1)).size, tokens.length - 1, 'each request asked for a token');
    });

    test('rotating tokens keep one session', async () => {
      const items = await userMedia(tokens.at(-1)!);
      assert.equal(items.length, 1);
      assert.equal(items[0]!.mediaId, result.mediaId);
    });

    test('without a provider the 401 stands', async () => {
      // Without a provider there is nothing to refresh: the 401 stands.
      const client = new MediaryClient({ server: proxy.url, key: expired, retry: { retries: 0 } });
      await assert.rejects(client.listUserMedia(), (err: { status?: number }) => err.status === 401);
    });
  });
});

describe('hashing progress, pause and resume', () => {
  test('hashing reports bytes hashed before the first byte is sent', async () => {
    const device = await t.device('cam-hash');
    const data = videoBytes(12 * MiB);
    const file = await fileOf('hash.mp4', data);
    const events: Progress[] = [];
    const from = proxy.seen.length;
    let putsWhileHashing = -1;
    await uploadFile(file, {
      server: proxy.url,
      key: device.key,
      stateStore: null,
      onProgress: (p) => {
        events.push(p);
        if (p.phase === 'hashing' && p.bytesHashed === p.totalBytes)
          putsWhileHashing = proxy.seen.length - from;
      },
    });
    const hashing = events.filter((e) => e.phase === 'hashing');
    const firstOther = events.findIndex((e) => e.phase !== 'hashing');
    assert.ok(firstOther > 0 && hashing.length === firstOther, 'hashing events come first');
    assert.equal(hashing[0]!.bytesHashed, 0);
    assert.equal(hashing.at(-1)!.bytesHashed, data.length);
    assert.ok(
      hashing.some((e) => e.bytesHashed > 0 && e.bytesHashed < data.length),
      'progress in between',
    );
    for (let i = 1; i < hashing.length; i++)
      assert.ok(hashing[i]!.bytesHashed >= hashing[i - 1]!.bytesHashed);
    assert.ok(hashing.every((e) => e.totalBytes === data.length && e.bytesSent === 0));
    assert.equal(putsWhileHashing, 0, 'nothing was sent while hashing');
  });

  describe('pause and resume', () => {
    let user: Awaited<ReturnType<TestServer['user']>>;
    let data: Buffer;
    let from: number;
    const events: Progress[] = [];
    let task: ReturnType<typeof uploadFile>;
    let media: Awaited<ReturnType<typeof userMedia>>[number] | undefined;
    after(() => proxy.misbehave());

    test('pause stops sending without cancelling the session', async () => {
      user = await t.user('u-pause');
      data = videoBytes(20 * MiB); // 4 parts
      const file = await fileOf('pause.mp4', data);
      const stateDir = path.join(dir, 'state-pause');
      from = proxy.seen.length;
      proxy.misbehave((_req, { part }) => (part !== undefined ? { delayMs: 200 } : undefined));
      let pausedAt: number | undefined;
      {
        task = uploadFile(file, {
          server: proxy.url,
          key: user.token,
          concurrency: 1,
          stateStore: new FileStateStore(stateDir),
          retry: FAST_RETRY,
          onProgress: (p) => {
            events.push(p);
            if (pausedAt === undefined && p.partsDone >= 1) {
              pausedAt = p.partsDone;
              task.pause();
            }
          },
        });
        let settled = false;
        void task.then(
          () => (settled = true),
          () => (settled = true),
        );
        while (pausedAt === undefined) await sleep(20);
        assert.equal(task.paused, true);
        // While paused: the promise stays pending, the session stays open, and no part is sent.
        await sleep(300);
        const puts = partPuts(from).length;
        await sleep(700);
        assert.equal(partPuts(from).length, puts, 'no part sent while paused');
        assert.equal(settled, false, 'the upload is still running');
        [media] = await userMedia(user.token);
        assert.equal(media?.status, 'PENDING', 'pause does not cancel the session');
        assert.ok(events.some((e) => e.phase === 'paused'));
      }
    });

    test('resume sends the remaining parts', async () => {
      try {
        task.resume();
        assert.equal(task.paused, false);
        const result = await task;
        assert.equal(result.mediaId, media!.mediaId);
        assert.equal(result.partsSent + result.partsSkipped, 4);
        const stored = new Set(
          partPuts(from)
            .filter((p) => p.outcome === 'ok')
            .map((p) => p.part),
        );
        assert.deepEqual([...stored].sort(), [1, 2, 3, 4]);
        const sending = events.filter((e) => e.phase !== 'hashing');
        for (let i = 1; i < sending.length; i++) {
          assert.ok(sending[i]!.bytesSent >= sending[i - 1]!.bytesSent, 'bytesSent never goes back');
        }
        assert.equal(sending.at(-1)!.bytesSent, data.length);
      } finally {
        proxy.misbehave();
      }
      const items = await userMedia(user.token);
      assert.equal(items.length, 1);
      assert.equal(items[0]!.sha256, sha256(data));
      assert.match(items[0]!.status, /^(UPLOADED|PROCESSING|READY)$/);
    });
  });
});

describe('type inference', () => {
  test('a Blob typed application/octet-stream or untyped goes up as the type its bytes say', async () => {
    const user = await t.user('u-infer');
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#48c' } })
      .png()
      .toBuffer();
    const jpeg = await sharp(png).jpeg().toBuffer();
    const cases = [
      {
        blob: new Blob([asBody(png)], { type: 'application/octet-stream' }),
        name: 'photo.png',
        want: 'image/png',
      },
      { blob: new Blob([asBody(jpeg)]), name: 'no-extension', want: 'image/jpeg' },
      // The bytes win over a misleading extension.
      {
        blob: new Blob([asBody(png)], { type: 'application/octet-stream' }),
        name: 'shot.jpg',
        want: 'image/png',
      },
    ];
    for (const c of cases) {
      const r = await uploadFile(c.blob, {
        server: proxy.url,
        key: user.token,
        fileName: c.name,
        stateStore: null,
        retry: FAST_RETRY,
      });
      assert.equal(r.media.mimeType, c.want, c.name);
    }
    // A path with no extension: sniffed too.
    const p = await fileOf('scan', png);
    const fromPath = await uploadFile(p, { server: proxy.url, key: user.token, stateStore: null });
    assert.equal(fromPath.media.mimeType, 'image/png');
    // Bytes and name that say nothing: a clear error before anything is sent.
    await assert.rejects(
      uploadFile(new Blob([new Uint8Array(64).fill(7)]), {
        server: proxy.url,
        key: user.token,
        fileName: 'mystery',
        stateStore: null,
      }),
      /cannot tell the type of mystery/,
    );
  });

  test('the magic-number table knows every type the API accepts', async () => {
    const img = sharp({ create: { width: 4, height: 4, channels: 3, background: '#123' } });
    const formats = [
      ['image/jpeg', await img.clone().jpeg().toBuffer()],
      ['image/png', await img.clone().png().toBuffer()],
      ['image/webp', await img.clone().webp().toBuffer()],
      ['image/gif', await img.clone().gif().toBuffer()],
      ['image/avif', await img.clone().avif().toBuffer()],
    ] as const;
    for (const [want, bytes] of formats) assert.equal(sniffMimeType(bytes.subarray(0, 64)), want, want);
    const ftyp = (major: string, ...compat: string[]) => {
      const b = Buffer.alloc(64);
      b.writeUInt32BE(16 + 4 * compat.length, 0);
      b.write(`ftyp${major}`, 4, 'latin1');
      compat.forEach((c, i) => b.write(c, 16 + 4 * i, 'latin1'));
      return b;
    };
    assert.equal(sniffMimeType(ftyp('heic', 'mif1', 'heic')), 'image/heic');
    assert.equal(sniffMimeType(ftyp('mif1', 'mif1', 'miaf')), 'image/heif');
    assert.equal(sniffMimeType(ftyp('qt  ', 'qt  ')), 'video/quicktime');
    assert.equal(sniffMimeType(ftyp('isom', 'isom', 'iso2', 'avc1')), 'video/mp4');
    const ebml = (doc: string) =>
      Buffer.concat([
        Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x9f]),
        Buffer.from(`\x42\x82\x84${doc}`, 'latin1'),
      ]);
    assert.equal(sniffMimeType(ebml('webm')), 'video/webm');
    assert.equal(sniffMimeType(ebml('matroska')), 'video/x-matroska');
    assert.equal(sniffMimeType(Buffer.from('hello world')), undefined);
  });
});
