/**
 * `mediary storage migrate` moves everything a processed media references, not just its original:
 * image variants, the video poster and the whole HLS ladder. Media are processed by a real server
 * with its worker on local disk, migrated to a real Ceph RGW, then served by a second server with
 * STORAGE_BACKEND=s3 on the same database — with the local objects gone — byte for byte.
 */
import assert from 'node:assert/strict';
import { readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startServer, type Server } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { migrateStorage } from '../../src/operations/storage-migration.ts';
import { createStore } from '../../src/storage/factory.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { PublicUrls } from '../../src/http/urls.ts';
import type { ObjectStore } from '../../src/storage/types.ts';
import { type Ceph, mediary, startCeph } from '../helpers/ceph.ts';
import { fixture } from '../helpers/files.ts';
import { call, freePort, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';
import { videoClip } from '../helpers/video.ts';
import { upload, waitFor } from '../processing/helpers.ts';

const BUCKET = 'mediary-migrate-derived';
const SECRET = 'migrate-derived-signing-secret-0123456789abcdef';
let ceph: Ceph;
let t: TestServer;
let s3Server: Server | undefined;
let localClosed = false;
let s3: ObjectStore;
let clip: Buffer;

before(async () => {
  ceph = await startCeph();
  const dir = await tempDir('mediary-migrate-clip-');
  const out = path.join(dir, 'clip.mp4');
  clip = await videoClip(out, { size: '640x360', rate: 15, duration: 1, audioHz: 330 });
  await rm(dir, { recursive: true, force: true });
  // The server on local disk (with its worker) knows the bucket it will move to.
  t = await startTestServer({
    ...ceph.serverEnv(BUCKET),
    STORAGE_BACKEND: 'local',
    SIGNING_SECRET: SECRET,
    VIDEO_PRESET: 'ultrafast',
  });
  s3 = createStore(t.config, 's3', new PublicUrls(new UrlSigner(SECRET), t.config.publicUrl));
  await s3.setup({ corsOrigins: [] });
});
after(async () => {
  if (localClosed) {
    await s3Server?.close();
    await rm(t.dataDir, { recursive: true, force: true });
  } else {
    await t?.close();
  }
  await ceph?.stop();
});

interface Stored {
  id: string;
  original: string;
  variants: { name: string; key: string }[];
  hls: string[];
  hlsMaster: string | null;
}

/** Every key a media references, read straight from the tables. */
async function storedObjects(id: string): Promise<Stored> {
  const pool = t.server.database.pool;
  const m = await pool.query('SELECT storage_key, hls_master_key FROM media WHERE id = $1', [id]);
  const v = await pool.query('SELECT name, key FROM media_variants WHERE media_id = $1 ORDER BY name', [id]);
  const h = await pool.query(
    'SELECT storage_key FROM media_hls_objects WHERE media_id = $1 ORDER BY storage_key',
    [id],
  );
  return {
    id,
    original: m.rows[0].storage_key,
    variants: v.rows,
    hls: h.rows.map((r) => r.storage_key as string),
    hlsMaster: m.rows[0].hls_master_key,
  };
}
const keysOf = (s: Stored) => [s.original, ...s.variants.map((v) => v.key), ...s.hls];

async function bytesOf(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

const uris = (playlist: string) =>
  playlist
    .split('\n')
    .flatMap((l) =>
      l.startsWith('#') ? [...l.matchAll(/URI="([^"]+)"/g)].map((m) => m[1]!) : l.trim() ? [l.trim()] : [],
    );

describe('migrate local → s3 moves originals, variants, poster and HLS', () => {
  type Kind = 'img1' | 'img2' | 'img3' | 'video';
  let dev: Awaited<ReturnType<TestServer['device']>>;
  let ids: Record<Kind, string>;
  let stored: Record<Kind, Stored>;
  // The bytes as the local store holds them: what the s3 server must serve later.
  const expected = new Map<string, Buffer>();
  let initial: unknown[];
  let first: Awaited<ReturnType<typeof mediary>>;
  let bad: string;
  let gone: string;
  let api: (p: string) => string;
  const localFile = (key: string) => path.join(t.config.storage.dir, key);
  const rows = async () =>
    (
      await t.server.database.pool.query(
        `SELECT id, status, storage_backend, storage_uri, updated_at FROM media WHERE id = ANY($1) ORDER BY id`,
        [Object.values(ids)],
      )
    ).rows;
  const backendOf = async (id: string) =>
    (await t.server.database.pool.query('SELECT storage_backend FROM media WHERE id = $1', [id])).rows[0]
      .storage_backend;
  const onS3 = async (keys: string[]) =>
    (await Promise.all(keys.map(async (k) => ((await s3.stat(k)) ? k : undefined)))).filter(Boolean);
  const migrate = (...extra: string[]) =>
    mediary(['storage', 'migrate', '--from', 'local', '--to', 's3', ...extra], { ...t.env });

  test('setup: three images and a video are processed on local disk, with variants and HLS', async () => {
    dev = await t.device();
    ids = {
      img1: (await upload(t, dev.auth, fixture('cameras/Canon_40D.jpg'))).id,
      img2: (await upload(t, dev.auth, fixture('cameras/Nikon_D70.jpg'))).id,
      img3: (await upload(t, dev.auth, fixture('gps/DSCN0010.jpg'))).id,
      video: (await upload(t, dev.auth, clip, 'video/mp4')).id,
    };
    for (const id of Object.values(ids)) {
      const st = await waitFor(t, dev.auth, id, ['READY', 'FAILED'], 180_000);
      assert.equal(st.status, 'READY', JSON.stringify(st));
    }
    stored = Object.fromEntries(
      await Promise.all(Object.entries(ids).map(async ([k, id]) => [k, await storedObjects(id)] as const)),
    ) as Record<Kind, Stored>;
    for (const k of ['img1', 'img2', 'img3', 'video'] as const)
      assert.ok(stored[k].variants.length >= 1, `${k} has variants`);
    assert.ok(stored.video.hls.length >= 4, 'master, media playlist, init and segments');
    assert.ok(stored.video.hlsMaster && stored.video.hls.includes(stored.video.hlsMaster));
    for (const s of Object.values(stored))
      for (const key of keysOf(s)) expected.set(key, await readFile(localFile(key)));
  });

  test('a dry run says what it would do and changes nothing', async () => {
    initial = await rows();
    const dry = await migrate('--dry-run');
    assert.equal(dry.code, 0, dry.stdout + dry.stderr);
    assert.match(dry.stdout, new RegExp(`${ids.video} video READY would copy \\d+ objects`));
    assert.match(dry.stdout, /dry run: 4 media to check/);
    assert.deepEqual(await rows(), initial, 'a dry run changes no row');
    assert.deepEqual(await onS3([...expected.keys()]), [], 'and copies nothing');
  });

  test('a run interrupted in the middle of a media switches nothing', async () => {
    // Interrupted while the first media's first object is copied (it has more).
    const stop = new AbortController();
    let puts = 0;
    const interruptingS3 = new Proxy(s3, {
      get(target, prop) {
        if (prop === 'put') {
          return (...args: Parameters<ObjectStore['put']>) => {
            // The first object put (not the probe that checks the target is writable).
            if (!args[0].startsWith('mediary-probe-') && ++puts === 1) stop.abort();
            return target.put(...args);
          };
        }
        const value: unknown = Reflect.get(target, prop);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const lines: string[] = [];
    const cut = await migrateStorage(
      t.server.database.pool,
      createStore(t.config, 'local', new PublicUrls(new UrlSigner(SECRET), t.config.publicUrl)),
      interruptingS3,
      {
        dryRun: false,
        signal: stop.signal,
        parallelism: 1,
        progress: (l) => lines.push(l),
      },
    );
    assert.equal(cut.interrupted, true);
    assert.equal(cut.copied, 0);
    assert.equal(cut.objects, 1);
    assert.match(lines.join('\n'), new RegExp(`${ids.img1} .*interrupted: left on local`));
    assert.deepEqual(await rows(), initial, 'no row switched');
    assert.ok(new Set(keysOf(stored.img1)).size >= 2);
    assert.deepEqual(await onS3(keysOf(stored.img1)), [stored.img1.original], 'only its first object copied');
  });

  test('the half-copied media stays fully readable from the old backend', async () => {
    const dl = await bytesOf(t.api(`/media/${ids.img1}/download?mode=proxy`), dev.auth);
    assert.equal(dl.status, 200);
    assert.ok(dl.body.equals(expected.get(stored.img1.original)!));
    for (const v of stored.img1.variants) {
      const r = await bytesOf(t.api(`/media/${ids.img1}/variants/${v.name}?mode=proxy`), dev.auth);
      assert.equal(r.status, 200);
      assert.ok(r.body.equals(expected.get(v.key)!));
    }
  });

  test('a corrupted variant and a deleted one fail their media, and nothing unverified lands on S3', async () => {
    bad = stored.img2.variants[0]!.key;
    const corrupt = Buffer.from(expected.get(bad)!);
    corrupt.writeUInt8(corrupt.readUInt8(corrupt.length >> 1) ^ 0xff, corrupt.length >> 1);
    await writeFile(localFile(bad), corrupt);
    gone = stored.img3.variants.at(-1)!.key;
    await unlink(localFile(gone));
    first = await migrate();
    assert.equal(first.code, 1, first.stdout + first.stderr);
    assert.match(first.stdout, new RegExp(`${ids.img2} .*FAILED \\(checksum_mismatch.*variant ${bad}`));
    assert.match(first.stdout, new RegExp(`${ids.img3} .*FAILED \\(variant ${gone} is missing on local`));
    assert.deepEqual(await onS3([bad, gone]), [], 'nothing unverified lands on the target');
  });

  test('the interrupted media resumes without copying again what the first run copied', () => {
    assert.match(
      first.stdout,
      new RegExp(
        `${ids.img1} image READY copied \\d+ objects? \\(\\d+ bytes\\), 1 already on s3, verified; switched`,
      ),
      'the interrupted media resumes: what the first run copied is not copied again',
    );
  });

  test('the other media switch while the failed ones stay on the source', async () => {
    assert.match(first.stdout, /2 of 4 media switched/);
    assert.equal(await backendOf(ids.img1), 's3');
    assert.equal(await backendOf(ids.video), 's3');
    assert.equal(await backendOf(ids.img2), 'local', 'a failed media stays on the source');
    assert.equal(await backendOf(ids.img3), 'local');
    const still = await call(t.api(`/media/${ids.img2}`), { headers: dev.auth });
    assert.equal(still.body.storageBackend, 'local');
  });

  test('after a repair a rerun finishes only what is left', async () => {
    await writeFile(localFile(bad), expected.get(bad)!);
    await writeFile(localFile(gone), expected.get(gone)!);
    const second = await migrate();
    assert.equal(second.code, 0, second.stdout + second.stderr);
    assert.match(second.stdout, /2 of 2 media switched/);
  });

  test('a rerun with nothing left does nothing and every media is on S3', async () => {
    const third = await migrate();
    assert.equal(third.code, 0, third.stdout + third.stderr);
    assert.match(third.stdout, /0 of 0 media switched; 0 objects copied/);
    for (const r of await rows()) {
      assert.equal(r.storage_backend, 's3');
      assert.match(r.storage_uri, new RegExp(`^s3://${BUCKET}/`));
    }
  });

  test('--recheck copies the objects a media already on S3 lacks there', async () => {
    // E.g. switched by the originals-only migration of earlier versions.
    const lostVariant = stored.img1.variants[0]!.key;
    const lostSegment = stored.video.hls.find((k) => k.endsWith('.m4s'))!;
    await s3.delete(lostVariant);
    await s3.delete(lostSegment);
    const recheck = await migrate('--recheck');
    assert.equal(recheck.code, 0, recheck.stdout + recheck.stderr);
    assert.match(recheck.stdout, /2 objects copied/);
    assert.match(recheck.stdout, /4 already on s3 rechecked/);
    assert.deepEqual(await onS3([lostVariant, lostSegment]), [lostVariant, lostSegment]);
  });

  test('a server on S3 with the local objects gone serves originals and variants byte for byte', async () => {
    localClosed = true;
    await t.server.close();
    await rename(t.config.storage.dir, `${t.config.storage.dir}.moved-away`);
    const port = await freePort();
    const s3env = {
      ...t.env,
      STORAGE_BACKEND: 's3',
      PORT: String(port),
      PUBLIC_URL: `http://127.0.0.1:${port}`,
    };
    const config = loadConfig(s3env);
    s3Server = await startServer(config, createLogger(config.logLevel, 2));
    api = (p: string) => `${config.publicUrl}/api/v1${p}`;
    for (const s of Object.values(stored)) {
      const view = await call(api(`/media/${s.id}`), { headers: dev.auth });
      assert.equal(view.status, 200, view.text);
      assert.equal(view.body.storageBackend, 's3');
      const original = await bytesOf(api(`/media/${s.id}/download?mode=proxy`), dev.auth);
      assert.equal(original.status, 200);
      assert.ok(original.body.equals(expected.get(s.original)!), `original of ${s.id}`);
      for (const v of s.variants) {
        const r = await bytesOf(api(`/media/${s.id}/variants/${v.name}?mode=proxy`), dev.auth);
        assert.equal(r.status, 200, `variant ${v.name} of ${s.id}`);
        assert.ok(r.body.equals(expected.get(v.key)!), `variant ${v.name} of ${s.id}`);
      }
    }
  });

  test('that server plays the HLS ladder from the bucket byte for byte', async () => {
    const master = await call(api(`/media/${ids.video}/hls/master.m3u8`), { headers: dev.auth });
    assert.equal(master.status, 200, master.text);
    const prefix = stored.video.hlsMaster!.slice(0, stored.video.hlsMaster!.lastIndexOf('/'));
    let segments = 0;
    for (const playlistUrl of uris(master.text)) {
      const playlist = await call(playlistUrl); // no credentials: the token does it
      assert.equal(playlist.status, 200, playlist.text);
      assert.match(playlist.text, /#EXT-X-ENDLIST/);
      for (const url of uris(playlist.text)) {
        // Segments come straight from the bucket now (presigned; path-style /<bucket>/<key>).
        const u = new URL(url);
        assert.equal(u.host, new URL(ceph.env.S3_ENDPOINT!).host, url);
        const key = decodeURIComponent(u.pathname).slice(`/${BUCKET}/`.length);
        assert.ok(key.startsWith(`${prefix}/`), key);
        const seg = await bytesOf(url);
        assert.equal(seg.status, 200, url);
        assert.ok(seg.body.equals(expected.get(key)!), `segment ${key}`);
        segments++;
      }
    }
    assert.ok(segments >= 2, 'an init segment and media segments');
  });
});
