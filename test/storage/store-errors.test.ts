/** Which store failures become 503 service_unavailable (src/storage/errors.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isStoreUnavailable, StoreUnavailableError } from '../../src/storage/errors.ts';

const sdk = (name: string, status?: number, code?: string) =>
  Object.assign(new Error(name), {
    name,
    ...(code ? { code } : {}),
    $metadata: status === undefined ? { attempts: 3 } : { httpStatusCode: status },
  });

test('unavailable: refused/reset/timeouts, 5xx, SDK errors without an HTTP answer, our deadline', () => {
  assert.ok(isStoreUnavailable(sdk('Error', undefined, 'ECONNREFUSED')));
  assert.ok(isStoreUnavailable(sdk('Error', undefined, 'ECONNRESET')));
  assert.ok(isStoreUnavailable(sdk('TimeoutError')));
  assert.ok(isStoreUnavailable(sdk('InternalError', 500)));
  assert.ok(isStoreUnavailable(sdk('ServiceUnavailable', 503)));
  assert.ok(isStoreUnavailable(sdk('SlowDown', 503)));
  assert.ok(isStoreUnavailable(sdk('Unknown', undefined)));
  assert.ok(isStoreUnavailable(new StoreUnavailableError('deadline')));
  assert.ok(isStoreUnavailable(Object.assign(new Error('x'), { name: 'TimeoutError' })));
});

test('not unavailable: answers about the request itself, and non-errors', () => {
  assert.ok(!isStoreUnavailable(sdk('NoSuchKey', 404)));
  assert.ok(!isStoreUnavailable(sdk('AccessDenied', 403)));
  assert.ok(!isStoreUnavailable(sdk('InvalidPart', 400)));
  assert.ok(!isStoreUnavailable(new Error('plain bug')));
  assert.ok(!isStoreUnavailable('ECONNREFUSED'));
  assert.ok(!isStoreUnavailable(undefined));
});
