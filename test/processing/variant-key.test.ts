import assert from 'node:assert/strict';
import { test } from 'node:test';
import { variantKey, variantKeySha256 } from '../../src/media/layout.ts';

test('a variant key names the sha256 of its bytes, and only a key of that shape does', () => {
  const sha = 'ab'.repeat(32);
  const id = '5b0c2a1e-0000-4000-8000-000000000000';
  assert.equal(variantKeySha256(variantKey(id, sha, 'webp')), sha);
  assert.equal(variantKeySha256(variantKey(id, sha, 'avif')), sha);
  assert.equal(variantKeySha256(`originals/${id}/${sha}.webp`), null);
  assert.equal(variantKeySha256(`variants/${id}/${sha.slice(1)}.webp`), null);
  assert.equal(variantKeySha256(`variants/${id}/${sha.toUpperCase()}.webp`), null);
  assert.equal(variantKeySha256(`variants/${id}/x/${sha}.webp`), null);
});
