/** Upload-and-wait helpers shared by the processing suites. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import { call, type TestServer } from '../helpers/server.ts';
import { sha256 } from '../helpers/files.ts';

type Auth = Record<string, string>;

/** Session → PUT → complete; returns the media id and the completion response. */
export async function upload(
  t: TestServer,
  auth: Auth,
  bytes: Buffer,
  mimeType = 'image/jpeg',
  extra: Record<string, unknown> = {},
) {
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: { fileName: 'photo', mimeType, bytes: bytes.length, sha256: sha256(bytes), ...extra },
  });
  assert.equal(s.status, 201, s.text);
  const put = await call(s.body.upload.url, {
    method: 'PUT',
    headers: { 'content-type': mimeType },
    body: bytes,
  });
  assert.equal(put.status, 200, put.text);
  const done = await call(t.api(`/media/${s.body.mediaId}/complete`), { method: 'POST', headers: auth });
  return { id: s.body.mediaId as string, done };
}

/** Polls the status endpoint until the media reaches one of `states`. */
export async function waitFor(t: TestServer, auth: Auth, id: string, states: string[], timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const st = await call(t.api(`/media/${id}/status`), { headers: auth });
    assert.equal(st.status, 200, st.text);
    if (states.includes(st.body.status)) return st.body;
    if (Date.now() > deadline)
      assert.fail(`media ${id} is still ${st.body.status} (wanted ${states.join('|')})`);
    await sleep(25);
  }
}

/** A JPEG of `width`×`height` made from a camera fixture, upscaled, with noise so it is not trivial. */
export async function bigJpeg(source: Buffer, width: number, height: number): Promise<Buffer> {
  const base = await sharp(source)
    .resize(width, height, { fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const noise = await sharp({
    create: {
      width,
      height,
      channels: 3,
      background: '#000',
      noise: { type: 'gaussian', mean: 128, sigma: 12 },
    },
  })
    .raw()
    .toBuffer();
  const out = Buffer.alloc(base.data.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.max(0, Math.min(255, base.data[i]! + noise[i]! - 128));
  return sharp(out, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer();
}
