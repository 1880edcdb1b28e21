/**
 * src/http/urls.ts: the URLs the API hands out for its four signed resources (upload, part, local
 * storage GET, HLS playback) — their exact shape on the wire, and that the same module's checks
 * take back exactly those URLs: tampered, expired or another resource's → 403.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AppError } from '../../src/errors.ts';
import { apiPath, paths, PublicUrls, ROUTES } from '../../src/http/urls.ts';
import { restorePath } from '../../src/media/archive.ts';
import { UrlSigner } from '../../src/storage/signing.ts';

const BASE = 'https://media.example.test';
const signer = new UrlSigner('s'.repeat(32));
const urls = new PublicUrls(signer, BASE);
const MEDIA = '5b0c8a2e-0d1f-4e4c-9a53-3c1e0b6f7a10';
const OTHER = '9e2d4c1b-7a35-4f60-8b21-6d0e3f9a4c58';
const KEY = `media/${MEDIA}/original`;
const now = () => Math.floor(Date.now() / 1000);
const FUTURE = now() + 3600;
const PAST = now() - 60;
const GET = { contentType: 'image/jpeg', contentDisposition: 'inline; filename="a.jpg"' };

/** The error code a check throws, or 'ok'. */
function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof AppError, String(err));
    return err.code;
  }
}

const queryOf = (url: string) => Object.fromEntries(new URL(url).searchParams);
const keysOf = (url: string) => [...new URL(url).searchParams.keys()];
/** The signature with its first character changed. */
const tamper = (sig: string) => (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);

describe('upload URL', () => {
  const url = urls.upload(MEDIA, FUTURE);

  test('is PUBLIC_URL + /api/v1/media/{id}/upload?expires&sig', () => {
    const { sig } = signer.sign('upload', { mediaId: MEDIA }, FUTURE);
    assert.equal(url, `${BASE}/api/v1/media/${MEDIA}/upload?expires=${FUTURE}&sig=${sig}`);
  });

  test('its own parameters verify for its media', () => {
    assert.equal(
      outcome(() => urls.verifyUpload(MEDIA, queryOf(url))),
      'ok',
    );
  });

  test('another media, a changed signature or expiry → signature_invalid', () => {
    const q = queryOf(url);
    assert.equal(
      outcome(() => urls.verifyUpload(OTHER, q)),
      'signature_invalid',
    );
    assert.equal(
      outcome(() => urls.verifyUpload(MEDIA, { ...q, sig: tamper(q.sig!) })),
      'signature_invalid',
    );
    assert.equal(
      outcome(() => urls.verifyUpload(MEDIA, { ...q, expires: String(FUTURE + 1) })),
      'signature_invalid',
    );
  });

  test('past its expiry → signature_expired', () => {
    assert.equal(
      outcome(() => urls.verifyUpload(MEDIA, queryOf(urls.upload(MEDIA, PAST)))),
      'signature_expired',
    );
  });
});

describe('part URL', () => {
  const url = urls.part(MEDIA, 3, 'up-1', FUTURE);

  test('is PUBLIC_URL + /api/v1/media/{id}/parts/{n}?expires&upload&sig', () => {
    assert.equal(new URL(url).origin + new URL(url).pathname, `${BASE}/api/v1/media/${MEDIA}/parts/3`);
    assert.deepEqual(keysOf(url), ['expires', 'upload', 'sig']);
    assert.equal(queryOf(url).upload, 'up-1');
  });

  test('its own parameters verify, to the upload id it was signed for', () => {
    assert.equal(urls.verifyPart(MEDIA, 3, queryOf(url)).uploadId, 'up-1');
  });

  test('another part, media or upload id, or a changed signature → signature_invalid', () => {
    const q = queryOf(url);
    for (const check of [
      () => urls.verifyPart(MEDIA, 4, q),
      () => urls.verifyPart(OTHER, 3, q),
      () => urls.verifyPart(MEDIA, 3, { ...q, upload: 'up-2' }),
      () => urls.verifyPart(MEDIA, 3, { ...q, sig: tamper(q.sig!) }),
    ]) {
      assert.equal(outcome(check), 'signature_invalid');
    }
  });

  test('past its expiry → signature_expired', () => {
    assert.equal(
      outcome(() => urls.verifyPart(MEDIA, 3, queryOf(urls.part(MEDIA, 3, 'up-1', PAST)))),
      'signature_expired',
    );
  });
});

describe('storage URL (local store)', () => {
  const signedAt = now();
  const url = urls.signedGet(KEY, { ...GET, signedAt, expiresInSeconds: 600 });

  test('is PUBLIC_URL + /api/v1/storage/{key with / as %2F}?expires&ct&cd&sig', () => {
    assert.ok(url.startsWith(`${BASE}/api/v1/storage/media%2F${MEDIA}%2Foriginal?`), url);
    assert.deepEqual(keysOf(url), ['expires', 'ct', 'cd', 'sig']);
    assert.equal(queryOf(url).expires, String(signedAt + 600));
    assert.equal(queryOf(url).cd, GET.contentDisposition);
  });

  test('its own parameters verify for its key', () => {
    assert.equal(
      outcome(() => urls.verifyStorage(KEY, queryOf(url))),
      'ok',
    );
  });

  test('another key, other response headers or a changed signature → signature_invalid', () => {
    const q = queryOf(url);
    for (const check of [
      () => urls.verifyStorage(`media/${OTHER}/original`, q),
      () => urls.verifyStorage(KEY, { ...q, ct: 'text/html' }),
      () => urls.verifyStorage(KEY, { ...q, cd: 'attachment' }),
      () => urls.verifyStorage(KEY, { ...q, sig: tamper(q.sig!) }),
    ]) {
      assert.equal(outcome(check), 'signature_invalid');
    }
  });

  test('past its expiry → signature_expired', () => {
    const old = urls.signedGet(KEY, { ...GET, signedAt: PAST - 600, expiresInSeconds: 600 });
    assert.equal(
      outcome(() => urls.verifyStorage(KEY, queryOf(old))),
      'signature_expired',
    );
  });
});

describe('HLS playback URL', () => {
  const token = urls.token(MEDIA, 'run-1', FUTURE);
  const url = urls.hlsObject(MEDIA, '720p/seg_1.m4s', token);

  test('is PUBLIC_URL + /api/v1/media/{id}/hls/<path>?token=<expires>.<runId>.<signature>', () => {
    assert.match(token, new RegExp(`^${FUTURE}\\.run-1\\.[A-Za-z0-9_-]+$`));
    assert.equal(url, `${BASE}/api/v1/media/${MEDIA}/hls/720p/seg_1.m4s?token=${token}`);
  });

  test('the token in it grants its run until its expiry', () => {
    assert.deepEqual(urls.verifyToken(MEDIA, queryOf(url).token!), { runId: 'run-1', expiresAt: FUTURE });
  });

  test('another media, another run or a changed signature → signature_invalid', () => {
    const [, , sig] = token.split('.');
    for (const check of [
      () => urls.verifyToken(OTHER, token),
      () => urls.verifyToken(MEDIA, token.replace('.run-1.', '.run-2.')),
      () => urls.verifyToken(MEDIA, `${FUTURE}.run-1.${tamper(sig!)}`),
    ]) {
      assert.equal(outcome(check), 'signature_invalid');
    }
  });

  test('past its expiry → signature_expired', () => {
    assert.equal(
      outcome(() => urls.verifyToken(MEDIA, urls.token(MEDIA, 'run-1', PAST))),
      'signature_expired',
    );
  });
});

describe('a signature of one resource', () => {
  const upload = queryOf(urls.upload(MEDIA, FUTURE));

  test('never opens another resource, with the same ids and expiry', () => {
    const { sig, expires } = upload;
    assert.equal(
      outcome(() => urls.verifyPart(MEDIA, 1, { expires, sig, upload: 'up-1' })),
      'signature_invalid',
    );
    assert.equal(
      outcome(() =>
        urls.verifyStorage(KEY, { expires, sig, ct: GET.contentType, cd: GET.contentDisposition }),
      ),
      'signature_invalid',
    );
    assert.equal(
      outcome(() => urls.verifyToken(MEDIA, `${expires}.run-1.${sig}`)),
      'signature_invalid',
    );
    const part = queryOf(urls.part(MEDIA, 1, 'up-1', FUTURE));
    assert.equal(
      outcome(() => urls.verifyUpload(MEDIA, { expires: part.expires!, sig: part.sig! })),
      'signature_invalid',
    );
  });
});

describe('paths', () => {
  test('fill the route templates under /api/v1', () => {
    assert.equal(apiPath(ROUTES.part, { id: MEDIA, partNumber: 7 }), `/api/v1/media/${MEDIA}/parts/7`);
    assert.equal(paths.hlsMaster(MEDIA), `/api/v1/media/${MEDIA}/hls/master.m3u8`);
    assert.equal(paths.variant(MEDIA, 'thumb'), `/api/v1/media/${MEDIA}/variants/thumb`);
    assert.throws(() => apiPath(ROUTES.part, { id: MEDIA }), /partNumber/);
  });

  test('the restore path named in `archived` errors is the restore route', () => {
    assert.equal(restorePath(MEDIA), paths.restore(MEDIA));
  });
});
