/**
 * The OpenAPI document describes the service exactly. The README walk-through (its curl block,
 * run by bash) and the SDK's flows go through a proxy that checks every request and every answer
 * against the document the server generates (test/helpers/openapi-proxy.ts); the server's
 * PUBLIC_URL is the proxy, so signed upload, part and storage URLs pass through it too. The
 * document is linted with Redocly's recommended rules (offline: no telemetry, no update check).
 * Every JSON answer is also checked against the contract schema (src/contract) that the SDK's type
 * for it is the `Static` of, with no field beyond it (test/client/sdk-types.test.ts checks the
 * types themselves).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { TSchema } from '@sinclair/typebox';
import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import sharp from 'sharp';
import * as C from '../../src/contract/index.ts';
import { MediaryClient, MediaryError, uploadFile } from '../../src/client/node.ts';
import { sha256 } from '../helpers/files.ts';
import { MiB, videoBytes } from '../helpers/multipart-suite.ts';
import {
  startValidatingProxy,
  type OpenApiDocument,
  type ValidatingProxy,
} from '../helpers/openapi-proxy.ts';
import { call, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { videoClip } from '../helpers/video.ts';

const run = promisify(execFile);
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/**
 * The contract schema of each operation's JSON success answer: the schemas whose `Static` types
 * the SDK returns (test/client/types/sdk-contract.ts). Error answers are `C.ErrorBody`.
 */
const ANSWERS: Record<string, TSchema> = {
  createUploadSession: C.SessionResponse,
  createUploadSessionAlias: C.SessionResponse,
  uploadBytes: C.UploadResponse,
  completeUpload: C.MediaView,
  getMedia: C.MediaView,
  cancelUpload: C.MediaView,
  retryProcessing: C.MediaView,
  getMediaStatus: C.StatusResponse,
  listDeviceMedia: C.ListResponse,
  listUserMedia: C.ListResponse,
  signParts: C.SignPartsResponse,
  listParts: C.PartListing,
  uploadPart: C.StoredPart,
  downloadMedia: C.SignedUrlBody,
  getVariant: C.SignedUrlBody,
  getUserUsage: C.UsageView,
  getDeviceUsage: C.UsageView,
  liveness: C.Liveness,
  readiness: C.Readiness,
};

/** A copy of `schema` whose objects admit no property they do not declare (records excepted). */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (typeof schema !== 'object' || schema === null) return schema;
  const copy = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, closed(v)]));
  if (copy.type === 'object' && copy.properties && copy.additionalProperties === undefined) {
    copy.additionalProperties = false;
  }
  return copy;
}
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/mediary.mjs');

let t: TestServer;
let proxy: ValidatingProxy;
let doc: OpenApiDocument;
let dir: string;
let jpeg: Buffer;

before(async () => {
  proxy = await startValidatingProxy();
  t = await startTestServer({
    PUBLIC_URL: proxy.url,
    MULTIPART_THRESHOLD_BYTES: String(5 * MiB),
    MULTIPART_PART_SIZE_BYTES: String(5 * MiB),
    PROCESSING_POLL_INTERVAL_MS: '60000',
    VIDEO_PRESET: 'ultrafast',
  });
  const direct = `http://127.0.0.1:${t.config.port}`;
  doc = (await call(`${direct}/api/v1/openapi.json`)).body as OpenApiDocument;
  proxy.setTarget(direct, doc);
  dir = await tempDir('mediary-openapi-');
  jpeg = await sharp({
    create: {
      width: 320,
      height: 240,
      channels: 3,
      background: '#28a',
      noise: { type: 'gaussian', mean: 90, sigma: 30 },
    },
  })
    .jpeg()
    .toBuffer();
});
after(async () => {
  await t?.close();
  await proxy?.close();
});

const covered = () => new Set(proxy.exchanges.map((e) => e.operationId));

describe('the OpenAPI document', () => {
  test('passes the Redocly linter (recommended rules) with no errors, offline', async () => {
    const file = path.join(dir, 'openapi.json');
    await writeFile(file, JSON.stringify(doc));
    // Offline: every socket the linter would open is refused and logged (it must open none).
    const netLog = path.join(dir, 'net.log');
    const guard = path.join(dir, 'no-network.cjs');
    await writeFile(
      guard,
      `const net = require('node:net'); const fs = require('node:fs');
net.Socket.prototype.connect = function (...args) {
  fs.appendFileSync(${JSON.stringify(netLog)}, JSON.stringify(args[0]) + '\\n');
  throw new Error('no network while linting');
};`,
    );
    const lint = await run(
      process.execPath,
      [path.join(ROOT, 'node_modules/@redocly/cli/bin/cli.js'), 'lint', file, '--format=json'],
      {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: dir,
          NODE_OPTIONS: `--require ${guard}`,
          REDOCLY_TELEMETRY: 'off',
          REDOCLY_SUPPRESS_NOTIFICATIONS: 'true',
          REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true',
        },
      },
    ).catch((err: { stdout?: string; stderr?: string }) =>
      assert.fail(`lint failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`),
    );
    const report = JSON.parse(lint.stdout) as {
      totals: { errors: number };
      problems: { severity: string; ruleId: string }[];
    };
    assert.equal(
      report.totals.errors,
      0,
      JSON.stringify(report.problems.filter((p) => p.severity === 'error')),
    );
    assert.equal(await readFile(netLog, 'utf8').catch(() => ''), '', 'the linter opened no connection');
  });

  test('names the PUBLIC_URL as its server and every operation', () => {
    assert.deepEqual(
      doc.servers?.map((s) => s.url),
      [proxy.url],
      'servers: the PUBLIC_URL',
    );
    const ids: string[] = [];
    for (const [p, item] of Object.entries(doc.paths)) {
      assert.doesNotMatch(p, /\*|:/, `${p} is a path template`);
      for (const op of Object.values(item)) {
        assert.ok(op.operationId, `${p} has operationIds`);
        ids.push(op.operationId);
      }
    }
    assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
    assert.ok(ids.length >= 22, `${ids.length} operations`);
  });

  test('the README walk-through, run by bash with curl, matches the document', async () => {
    const readme = await readFile(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Walk-through with curl'));
    const script = /```bash\n([\s\S]*?)```/.exec(section)![1]!;
    assert.match(script, /curl .*\/complete/);
    const work = await tempDir('mediary-readme-');
    await writeFile(path.join(work, 'photo.jpg'), jpeg);
    const runnable = script
      .replaceAll('localhost:8080', `127.0.0.1:${proxy.port}`)
      .replaceAll('npx mediary', `"${process.execPath}" "${BIN}"`);
    const from = proxy.exchanges.length;
    await run('bash', ['-eo', 'pipefail', '-c', runnable], {
      cwd: work,
      env: { ...process.env, ...t.env, LOG_LEVEL: 'silent' },
    }).catch((err: { stdout?: string; stderr?: string }) =>
      assert.fail(`README script failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`),
    );
    assert.deepEqual(await readFile(path.join(work, 'copy.jpg')), jpeg, 'the download is the file');
    assert.deepEqual(await readFile(path.join(work, 'head.bin')), jpeg.subarray(0, 100), 'the range');
    const ops = proxy.exchanges.slice(from).map((e) => `${e.operationId} ${e.status}`);
    for (const expected of [
      'createUploadSession 201',
      'uploadBytes 200',
      'completeUpload 200',
      'getMedia 200',
      'listDeviceMedia 200',
      'downloadMedia 302',
      'getStorageObject 200',
      'downloadMedia 206',
    ]) {
      assert.ok(ops.includes(expected), `${expected} in ${ops.join(', ')}`);
    }
    assert.deepEqual(proxy.problems, []);
  });

  test('the SDK’s flows (single and multipart upload, status, list, downloads, variants, errors, delete) match the document', async () => {
    const owner = await t.user('openapi-owner');
    const device = await t.device('openapi-cam', owner.id);
    const client = new MediaryClient({ server: proxy.url, key: device.key });
    const photo = path.join(dir, 'photo.jpg');
    await writeFile(photo, jpeg);

    // Single upload, completed by the SDK; then processing.
    const single = await uploadFile(photo, {
      client,
      stateStore: null,
      cameraId: 'front',
      messageId: 'openapi-1',
    });
    assert.equal(single.multipart, false);
    const ready = await client.waitFor(single.mediaId, { intervalMs: 50, timeoutMs: 60_000 });
    assert.equal(ready.status, 'READY');
    const media = await client.get(single.mediaId);
    assert.equal(media.variants.length, 4);
    const page = await client.listDeviceMedia(device.id, { limit: 1 });
    assert.equal(page.items[0]?.mediaId, single.mediaId);
    await client.listDeviceMedia(device.id);
    await new MediaryClient({ server: proxy.url, key: owner.token }).listUserMedia('me', {
      cameraId: 'front',
    });

    // Downloads: proxied with a Range, and the redirect to a signed URL (followed, through the proxy).
    const ranged = await client.download(single.mediaId, { range: 'bytes=0-9' });
    assert.equal(ranged.status, 206);
    assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), jpeg.subarray(0, 10));
    const followed = await fetch(client.url(`/media/${single.mediaId}/download`), { headers: device.auth });
    assert.equal(sha256(Buffer.from(await followed.arrayBuffer())), sha256(jpeg));
    const etag = (await client.download(single.mediaId)).headers.get('etag')!;
    const cached = await fetch(client.url(`/media/${single.mediaId}/download?mode=proxy`), {
      headers: { ...device.auth, 'if-none-match': etag },
    });
    assert.equal(cached.status, 304);

    // Variants: the record's URL (content-addressed), redirected and proxied, with a Range.
    const v = media.variants.at(-1)!;
    const viaRedirect = await fetch(`${proxy.url}${v.url}`, { headers: device.auth });
    assert.equal(viaRedirect.status, 200);
    assert.equal(viaRedirect.headers.get('content-type'), 'image/webp');
    await viaRedirect.arrayBuffer();
    const part = await fetch(`${proxy.url}${v.url}&mode=proxy`, {
      headers: { ...device.auth, range: 'bytes=0-3' },
    });
    assert.equal(part.status, 206);
    await part.arrayBuffer();

    // Multipart: two parts through the local part route, completed with their ETags.
    const big = path.join(dir, 'big.mp4');
    await writeFile(big, videoBytes(5 * MiB + 4096));
    const multi = await uploadFile(big, { client, stateStore: null, messageId: 'openapi-2' });
    assert.equal(multi.multipart, true);
    assert.equal(multi.partsSent, 2);
    // Not a real video: processing fails, and the retry is accepted (202).
    const failed = await client.waitFor(multi.mediaId, {
      until: ['FAILED'],
      intervalMs: 50,
      timeoutMs: 60_000,
    });
    assert.equal(failed.status, 'FAILED');
    const retried = await call(client.url(`/media/${multi.mediaId}/retry-processing`), {
      method: 'POST',
      headers: { ...device.auth, 'content-type': 'application/json' },
    });
    assert.equal(retried.status, 202, retried.text);

    // A session listed, then cancelled; the parts listing of a multipart session.
    const pending = await client.createSession({
      fileName: 'later.mp4',
      mimeType: 'video/mp4',
      bytes: 6 * MiB,
    });
    assert.deepEqual((await client.listParts(pending.mediaId)).parts, []);
    await client.signParts(pending.mediaId, [1]);
    await client.cancel(pending.mediaId);

    // Errors are answered as the document says.
    const empty = await client.createSession({ fileName: 'none.jpg', mimeType: 'image/jpeg', bytes: 10 });
    const errors = [
      client.get('00000000-0000-4000-8000-000000000000'),
      client.createSession({ fileName: 'x', mimeType: 'image/jpeg', bytes: 0 }),
      client.createSession({ fileName: 'x.exe', mimeType: 'application/x-msdownload', bytes: 10 }),
      new MediaryClient({ server: proxy.url, key: 'mdk_wrong' }).get(single.mediaId),
      client.complete(empty.mediaId),
    ];
    const codes = (await Promise.allSettled(errors)).map((r) =>
      r.status === 'rejected' && r.reason instanceof MediaryError ? r.reason.status : r.status,
    );
    assert.deepEqual(codes, [404, 400, 422, 401, 409]);
    const hlsOfImage = await call(client.url(`/media/${single.mediaId}/hls/master.m3u8`), {
      headers: device.auth,
    });
    assert.equal(hlsOfImage.status, 409);

    // Health without credentials, and the document itself.
    for (const p of ['/healthz', '/readyz', '/api/v1/openapi.json'])
      assert.equal((await call(`${proxy.url}${p}`)).status, 200);

    await client.delete(single.mediaId);
    assert.equal((await call(client.url(`/media/${single.mediaId}`), { headers: device.auth })).status, 404);

    const ops = covered();
    for (const id of [
      'uploadBytes',
      'completeUpload',
      'getMediaStatus',
      'getMedia',
      'listDeviceMedia',
      'listUserMedia',
      'downloadMedia',
      'getStorageObject',
      'getVariant',
      'signParts',
      'uploadPart',
      'listParts',
      'cancelUpload',
      'retryProcessing',
      'getHlsMasterPlaylist',
      'deleteMedia',
      'liveness',
      'readiness',
      'getOpenApiDocument',
    ]) {
      assert.ok(ops.has(id), `${id} was exercised`);
    }
    assert.deepEqual(proxy.problems, []);
  });

  test('HLS playback (master with credentials, media playlist and a segment range by token) matches the document', async () => {
    const device = await t.device('openapi-video');
    const client = new MediaryClient({ server: proxy.url, key: device.key });
    const clip = path.join(dir, 'clip.mp4');
    await videoClip(clip, { size: '320x240', rate: 10, duration: 1 });
    const up = await uploadFile(clip, { client, stateStore: null, messageId: 'openapi-video' });
    const ready = await client.waitFor(up.mediaId, { intervalMs: 100, timeoutMs: 120_000 });
    assert.equal(ready.status, 'READY', JSON.stringify(ready.error));
    const from = proxy.exchanges.length;
    const master = await call(client.url(`/media/${up.mediaId}/hls/master.m3u8`), { headers: device.auth });
    assert.equal(master.status, 200);
    const playlistUrl = master.text.split('\n').find((l) => l.startsWith(proxy.url))!;
    const playlist = await call(playlistUrl);
    assert.equal(playlist.status, 200);
    const segments = playlist.text.split('\n').filter((l) => l.startsWith(proxy.url));
    const range = await fetch(segments.at(-1)!, { headers: { range: 'bytes=0-15' } });
    assert.equal(range.status, 206);
    await range.arrayBuffer();
    const ops = proxy.exchanges.slice(from).map((e) => `${e.operationId} ${e.status}`);
    assert.deepEqual(ops, ['getHlsMasterPlaylist 200', 'getHlsObject 200', 'getHlsObject 206']);
    assert.deepEqual(proxy.problems, []);
  });

  test('every JSON answer is exactly the contract schema the SDK’s type derives from', () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    addFormats(ajv);
    const problems: string[] = [];
    const checked = new Set<string>();
    const validators = new Map<TSchema, ValidateFunction>();
    for (const e of proxy.exchanges) {
      // The OpenAPI document itself is not a wire type of the contract.
      if (e.json === undefined || e.operationId === undefined || e.operationId === 'getOpenApiDocument') {
        continue;
      }
      const schema = e.status >= 400 ? C.ErrorBody : ANSWERS[e.operationId];
      if (!schema) {
        problems.push(`${e.operationId} ${e.status}: no contract schema for this JSON answer`);
        continue;
      }
      let validate = validators.get(schema);
      if (!validate) validators.set(schema, (validate = ajv.compile(closed(schema) as object)));
      if (!validate(e.json)) {
        problems.push(`${e.operationId} ${e.status}: ${ajv.errorsText(validate.errors)}`);
      }
      checked.add(`${e.operationId} ${e.status >= 400 ? 'error' : e.status}`);
    }
    assert.deepEqual(problems, []);
    for (const op of [
      'createUploadSession 201',
      'uploadBytes 200',
      'completeUpload 200',
      'getMedia 200',
      'getMediaStatus 200',
      'listDeviceMedia 200',
      'listUserMedia 200',
      'signParts 200',
      'listParts 200',
      'uploadPart 200',
      'cancelUpload 200',
      'retryProcessing 202',
      'getMedia error',
    ]) {
      assert.ok(checked.has(op), `${op} was checked (${[...checked].join(', ')})`);
    }
  });
});
