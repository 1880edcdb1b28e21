/**
 * EXIF and GPS from every container that carries them: the same photo (camera tags and a GPS
 * position written by sharp) as JPEG, PNG, WebP and AVIF reads the same through the real worker.
 * WebP used to give no EXIF and a warning "Unknown file format", AVIF no EXIF at all; GIF, which
 * has no EXIF, gets no warning. A WebP or AVIF whose EXIF block is damaged is still processed, with
 * a warning.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp, { type Exif } from 'sharp';
import { readExifBlock } from '../../src/infra/imaging/exif.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { upload, waitFor } from './helpers.ts';

const EXIF: Exif = {
  IFD0: { Make: 'TestCam', Model: 'X100' },
  IFD2: {
    DateTimeOriginal: '2024:05:06 07:08:09',
    ExposureTime: '1/250',
    FNumber: '28/10',
    ISOSpeedRatings: '200',
    FocalLength: '35/1',
  },
  IFD3: {
    GPSLatitudeRef: 'S',
    GPSLatitude: '43/1 28/1 264/100',
    GPSLongitudeRef: 'E',
    GPSLongitude: '11/1 53/1 636/100',
  },
};
const LATITUDE = -(43 + 28 / 60 + 2.64 / 3600);
const LONGITUDE = 11 + 53 / 60 + 6.36 / 3600;

const photo = () =>
  sharp({ create: { width: 80, height: 60, channels: 3, background: '#c84' } }).withExif(EXIF);

let t: TestServer;
before(async () => {
  t = await startTestServer({ PROCESSING_POLL_INTERVAL_MS: '60000' });
});
after(async () => {
  await t?.close();
});

async function processed(auth: Record<string, string>, bytes: Buffer, mimeType: string) {
  const { id, done } = await upload(t, auth, bytes, mimeType);
  assert.equal(done.status, 200, done.text);
  const st = await waitFor(t, auth, id, ['READY', 'FAILED']);
  assert.equal(st.status, 'READY', `${mimeType}: ${JSON.stringify(st.error)}`);
  const m = await call(t.api(`/media/${id}`), { headers: auth });
  return m.body;
}

describe('EXIF from every container', () => {
  test('JPEG, PNG, WebP and AVIF: camera tags and GPS for the owner, no warning', async () => {
    const owner = await t.user('exif-containers');
    const files: [string, Buffer][] = [
      ['image/jpeg', await photo().jpeg().toBuffer()],
      ['image/png', await photo().png().toBuffer()],
      ['image/webp', await photo().webp().toBuffer()],
      ['image/avif', await photo().avif({ effort: 0 }).toBuffer()],
    ];
    for (const [mimeType, bytes] of files) {
      assert.ok((await sharp(bytes).metadata()).exif, `${mimeType} fixture carries EXIF`);
      const m = await processed(owner.auth, bytes, mimeType);
      assert.equal(m.detectedMimeType, mimeType);
      assert.equal(m.metadata.warnings, undefined, `${mimeType}: ${JSON.stringify(m.metadata.warnings)}`);
      assert.deepEqual(
        m.metadata.exif,
        {
          make: 'TestCam',
          model: 'X100',
          exposureTime: 0.004,
          fNumber: 2.8,
          iso: 200,
          focalLength: 35,
          dateTimeOriginal: '2024-05-06T07:08:09',
        },
        mimeType,
      );
      assert.ok(m.gps, `${mimeType}: gps`);
      assert.ok(Math.abs(m.gps.latitude - LATITUDE) < 1e-6, `${mimeType}: ${JSON.stringify(m.gps)}`);
      assert.ok(Math.abs(m.gps.longitude - LONGITUDE) < 1e-6, `${mimeType}: ${JSON.stringify(m.gps)}`);
      for (const v of m.variants) {
        const res = await fetch(t.api(`/media/${m.mediaId}/variants/${v.name}?mode=proxy`), {
          headers: owner.auth,
        });
        const meta = await sharp(Buffer.from(await res.arrayBuffer())).metadata();
        assert.equal(meta.exif, undefined, `${mimeType}: no EXIF in variant ${v.name}`);
      }
    }
  });

  test('formats without EXIF (GIF, a WebP without it) get no EXIF and no warning', async () => {
    const owner = await t.user('exif-none');
    const plain = sharp({ create: { width: 40, height: 30, channels: 3, background: '#48c' } });
    for (const [mimeType, bytes] of [
      ['image/gif', await plain.clone().gif().toBuffer()],
      ['image/webp', await plain.clone().webp().toBuffer()],
      ['image/avif', await plain.clone().avif({ effort: 0 }).toBuffer()],
    ] as const) {
      const m = await processed(owner.auth, bytes, mimeType);
      assert.equal(m.metadata.exif, null, mimeType);
      assert.equal(m.metadata.warnings, undefined, `${mimeType}: ${JSON.stringify(m.metadata.warnings)}`);
      assert.equal(m.gps, null, mimeType);
    }
  });

  test('an EXIF block that is not TIFF is a warning, not a failure', async () => {
    const broken = await readExifBlock(Buffer.from('Exif\0\0garbage that is not a TIFF header'));
    assert.equal(broken.exif, null);
    assert.match(broken.warning ?? '', /could not be read/);
    const tiff = (await sharp(await photo().png().toBuffer()).metadata()).exif!;
    const read = await readExifBlock(Buffer.concat([Buffer.from('Exif\0\0'), tiff]));
    assert.equal(read.exif?.make, 'TestCam');
  });
});
