/**
 * The end of one PNG in ffmpeg's poster pipe: found at the last byte of IEND, however the bytes
 * are cut into reads, and only once.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import { PngFrameReader } from '../../src/infra/video/png-frame.ts';

const png = await sharp({ create: { width: 640, height: 360, channels: 3, background: '#3a6' } })
  .png({ compressionLevel: 0 })
  .toBuffer();

test('the PNG is handed back whole at its last byte, for any cut of the stream, then never again', () => {
  for (const size of [1, 7, 8, 13, 4096, 65_536, png.length]) {
    const reader = new PngFrameReader();
    const found: { at: number; png: Buffer }[] = [];
    for (let at = 0; at < png.length; at += size) {
      const out = reader.push(png.subarray(at, at + size));
      if (out) found.push({ at: Math.min(at + size, png.length), png: out });
    }
    assert.equal(found.length, 1, `reads of ${size} bytes`);
    assert.equal(found[0]!.at, png.length, 'not before the last byte');
    assert.ok(found[0]!.png.equals(png));
    assert.equal(reader.push(png), undefined, 'a second frame is not asked for');
  }
});

test('bytes after IEND are not part of the frame', () => {
  const reader = new PngFrameReader();
  const out = reader.push(Buffer.concat([png, Buffer.from('trailing')]));
  assert.ok(out?.equals(png));
});

test('a stream that is not a PNG never yields a frame', () => {
  const reader = new PngFrameReader();
  assert.equal(reader.push(Buffer.from('GIF89a and more bytes than a signature')), undefined);
  assert.equal(reader.push(png), undefined);
});
