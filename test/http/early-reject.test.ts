/**
 * An upload the server refuses before reading its body (forged or expired signature) must reach the
 * client as its JSON error, not as a connection reset: a client that only sees a reset retries
 * blindly (the SDK re-signs only on `signature_expired`). The server answers at once and closes the
 * connection without reading the body; the answer must still arrive while the client is mid-body,
 * many at a time.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { signingSecret } from '../../src/storage/signing.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t?.close();
});

/** PUTs `bytes` (written in 64 KiB chunks, as fast as the socket takes them) and returns the answer. */
function put(url: string, bytes: number): Promise<{ status: number | 'reset'; body: string }> {
  return new Promise((resolve) => {
    const req = http.request(url, {
      method: 'PUT',
      headers: { 'content-type': 'image/jpeg', 'content-length': String(bytes) },
      agent: false,
    });
    req.on('error', () => resolve({ status: 'reset', body: '' }));
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', () => resolve({ status: res.statusCode ?? 'reset', body }));
    });
    const chunk = Buffer.alloc(64 * 1024, 1);
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        const n = Math.min(chunk.length, bytes - sent);
        sent += n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

test('refused uploads answer with their JSON error, not a reset, even mid-body', async () => {
  const dev = await t.device('early');
  const bytes = 2 * 1024 * 1024;
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: dev.auth,
    json: { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes },
  });
  assert.equal(s.status, 201, s.text);
  const good = new URL(s.body.upload.url as string);
  const forged = new URL(good);
  forged.searchParams.set('sig', 'A'.repeat(43));
  // Expired but genuinely signed (with the server's own secret).
  const signer = new UrlSigner(await signingSecret(t.config));
  const past = Math.floor(Date.now() / 1000) - 60;
  const expired = new URL(good);
  expired.searchParams.set('expires', String(past));
  expired.searchParams.set('sig', signer.sign('upload', { mediaId: s.body.mediaId as string }, past).sig);
  const cases = [
    { url: forged.toString(), code: 'signature_invalid' },
    { url: expired.toString(), code: 'signature_expired' },
  ];
  const results = await Promise.all(
    Array.from({ length: 24 }, (_, i) => cases[i % cases.length]!).map(async (c) => ({
      ...c,
      got: await put(c.url, bytes),
    })),
  );
  const resets = results.filter((r) => r.got.status === 'reset').length;
  assert.equal(resets, 0, `${resets} of ${results.length} refused uploads ended in a reset`);
  for (const r of results) {
    assert.equal(r.got.status, 403);
    assert.equal((JSON.parse(r.got.body) as { error: { code: string } }).error.code, r.code);
  }
  // Nothing was stored by any of them.
  const st = await call(t.api(`/media/${s.body.mediaId}`), { headers: dev.auth });
  assert.equal(st.body.status, 'PENDING');
});
