import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { decodeCursor, encodeCursor } from '../../src/media/cursor.ts';
import { contentDisposition, downloadName, sanitizeFileName } from '../../src/media/keys.ts';
import { deviceMessageKey, keySegment, ownerKey } from '../../src/media/layout.ts';
import { parseRange } from '../../src/http/send-object.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { assertSafeKey } from '../../src/storage/types.ts';

describe('config', () => {
  test('defaults: embedded Postgres and local disk under ./data, port 8080', () => {
    const c = loadConfig({}, '/srv/app');
    assert.equal(c.port, 8080);
    assert.deepEqual(c.database, { kind: 'embedded', dir: '/srv/app/data/postgres', port: 54329 });
    assert.deepEqual(c.storage, { backend: 'local', dir: '/srv/app/data/objects' });
    assert.equal(c.publicUrl, 'http://localhost:8080');
  });
  test('DATABASE_URL switches to an external Postgres', () => {
    assert.deepEqual(loadConfig({ DATABASE_URL: 'postgres://u:p@db/x' }).database, {
      kind: 'external',
      url: 'postgres://u:p@db/x',
    });
  });
  for (const [name, value, message] of [
    ['PORT', '99999', /PORT must be between 0 and 65535/],
    ['PORT', '8o', /PORT must be a whole number/],
    ['DATABASE_URL', 'mysql://x', /DATABASE_URL must start with postgres/],
    ['STORAGE_BACKEND', 'ftp', /STORAGE_BACKEND must be/],
    ['JWT_SECRET', 'short', /JWT_SECRET must be at least 32/],
    ['LOG_LEVEL', 'loud', /LOG_LEVEL must be one of/],
    ['PUBLIC_URL', 'not a url', /PUBLIC_URL must be a URL/],
    ['WORKER_ENABLED', 'maybe', /WORKER_ENABLED must be true or false/],
  ] as const) {
    test(`${name}=${value} fails naming the variable`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (err: unknown) => err instanceof ConfigError && err.variable === name && message.test(err.message),
      );
    });
  }
});

describe('storage keys and names', () => {
  test('file names are sanitised metadata', () => {
    assert.equal(sanitizeFileName('../../etc/passwd'), 'passwd');
    assert.equal(sanitizeFileName('C:\\Users\\me\\photo.jpg'), 'photo.jpg');
    assert.equal(sanitizeFileName('a\u0000b\u202ec\n.jpg'), 'abc.jpg');
    assert.equal(sanitizeFileName('...'), 'file');
    assert.equal([...sanitizeFileName('é'.repeat(500))].length, 200);
  });
  test('key segments from foreign ids are kept only when plain', () => {
    assert.equal(keySegment('user_1'), 'user_1');
    assert.match(keySegment('auth0|abc/../x'), /^h[0-9a-f]{32}$/);
    assert.match(keySegment('..'), /^h[0-9a-f]{32}$/);
  });
  test('deterministic device key and unique owner keys', () => {
    const at = new Date('2026-11-20T23:59:59Z');
    assert.equal(deviceMessageKey('d', 'cam', at, 'm1', 'jpg'), 'd/cam/2026-11-20/m1.jpg');
    const a = ownerKey('image', 'u', at, 'png');
    assert.match(a, /^image\/u\/\d+-[0-9a-f-]{36}\.png$/);
    assert.notEqual(a, ownerKey('image', 'u', at, 'png'));
    assert.doesNotThrow(() => assertSafeKey(a));
    for (const bad of ['', '/abs', 'a/../b', 'a//b', 'a/./b', 'a\\b', 'a\nb'])
      assert.throws(() => assertSafeKey(bad), bad);
  });
  test('a download is saved with the extension of its verified type', () => {
    assert.equal(downloadName('evil.html', 'jpg'), 'evil.jpg');
    assert.equal(downloadName('photo', 'jpg'), 'photo.jpg');
    assert.equal(downloadName('.htaccess', 'png'), '.htaccess.png');
    assert.equal(downloadName('IMG_1.JPEG', 'jpg'), 'IMG_1.JPEG');
    assert.equal(downloadName('clip.mov', 'mov'), 'clip.mov');
    assert.equal(downloadName('a.b.svg', 'png'), 'a.b.png');
  });

  test('Content-Disposition carries an ASCII fallback and RFC 5987 filename*', () => {
    assert.equal(
      contentDisposition('attachment', 'résumé "1".pdf'),
      `attachment; filename="r_sum_ _1_.pdf"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22.pdf`,
    );
  });
});

describe('ranges, cursors, signatures', () => {
  test('parseRange', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
    assert.deepEqual(parseRange('bytes=90-200', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=-5', 100), { start: 95, end: 99 });
    assert.deepEqual(parseRange('bytes=-500', 100), { start: 0, end: 99 });
    assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=5-1', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-1,5-6', 100), undefined);
    assert.equal(parseRange('items=0-1', 100), undefined);
    assert.equal(parseRange(undefined, 100), undefined);
  });
  test('cursor round-trips and rejects garbage', () => {
    const c = { capturedAt: '2026-11-01 12:00:00.123456+00', id: '00000000-0000-4000-8000-000000000001' };
    assert.deepEqual(decodeCursor(encodeCursor(c)), c);
    for (const bad of [
      '',
      '!!!',
      Buffer.from('{}').toString('base64url'),
      Buffer.from('["2026-01-01","x"]').toString('base64url'),
    ]) {
      assert.throws(() => decodeCursor(bad), /cursor/);
    }
  });
  test('signatures bind method, resource, expiry and parameters', () => {
    const s = new UrlSigner('k'.repeat(32));
    const exp = Math.floor(Date.now() / 1000) + 60;
    const sig = s.sign('GET', 'storage/a', exp, { ct: 'image/jpeg' });
    assert.equal(s.verify('GET', 'storage/a', exp, sig, { ct: 'image/jpeg' }), 'ok');
    assert.equal(s.verify('PUT', 'storage/a', exp, sig, { ct: 'image/jpeg' }), 'invalid');
    assert.equal(s.verify('GET', 'storage/b', exp, sig, { ct: 'image/jpeg' }), 'invalid');
    assert.equal(s.verify('GET', 'storage/a', exp + 1, sig, { ct: 'image/jpeg' }), 'invalid');
    assert.equal(s.verify('GET', 'storage/a', exp, sig, { ct: 'text/html' }), 'invalid');
    assert.equal(
      new UrlSigner('j'.repeat(32)).verify('GET', 'storage/a', exp, sig, { ct: 'image/jpeg' }),
      'invalid',
    );
    const old = s.sign('GET', 'storage/a', 1000);
    assert.equal(s.verify('GET', 'storage/a', 1000, old), 'expired');
  });
});
