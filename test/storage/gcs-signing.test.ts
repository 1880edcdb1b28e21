/**
 * Google's V4 signing conformance cases, run through the one function the GCS store signs every
 * URL with (`signGcsUrl`, with credentials built as the store builds them from a key file), at
 * each case's fixed timestamp: the URL must be Google's expected URL, byte for byte.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, mock, test } from 'node:test';
import { Storage } from '@google-cloud/storage';
import type { GoogleAuth } from 'google-auth-library';
import { createGcsAuth, signGcsUrl } from '../../src/storage/gcs-signing.ts';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'gcs');
const keyFile = path.join(dir, 'test_service_account.not-a-test.json');

interface Case {
  description: string;
  bucket: string;
  object?: string;
  method: string;
  expiration: number;
  timestamp: string;
  headers?: Record<string, string>;
  queryParameters?: Record<string, string>;
  scheme?: string;
  urlStyle?: string;
  hostname?: string;
  clientEndpoint?: string;
  emulatorHostname?: string;
  universeDomain?: string;
  expectedUrl: string;
}
const cases = (
  JSON.parse(readFileSync(path.join(dir, 'v4_signatures.json'), 'utf8')) as { signingV4Tests: Case[] }
).signingV4Tests;

/** Why a case is not one the store can produce; undefined when it is. */
function notProduced(c: Case): string | undefined {
  if (c.method !== 'GET' && c.method !== 'PUT') return `the store signs GET and PUT only, not ${c.method}`;
  if (c.object === undefined) return 'the store signs object URLs only, never a bucket-level one';
  if (c.object.startsWith('/')) return 'keys never start with "/" (assertSafeKey)';
  if (c.urlStyle !== undefined && c.urlStyle !== 'PATH_STYLE')
    return `the store signs path-style URLs only, not ${c.urlStyle}`;
  if (c.hostname !== undefined) return 'the store never overrides the signed host';
  if (c.universeDomain !== undefined) return 'the store runs in the default universe (googleapis.com)';
  if (c.emulatorHostname !== undefined)
    return 'the store ignores STORAGE_EMULATOR_HOST (GCS_API_ENDPOINT instead)';
  if (c.clientEndpoint !== undefined && !/^https?:\/\//.test(c.clientEndpoint))
    return 'GCS_API_ENDPOINT is a URL with a scheme (and a URL drops the default :443)';
  const headers = Object.keys(c.headers ?? {}).map((h) => h.toLowerCase());
  if (headers.some((h) => h.startsWith('x-goog-encryption')))
    return 'the store never uses customer-supplied encryption keys';
  if (headers.includes('x-goog-content-sha256'))
    return 'the store never signs a payload hash (UNSIGNED-PAYLOAD)';
  return undefined;
}

const stores = new Map<string, Storage>();
const auth: GoogleAuth = createGcsAuth({ keyFile }) as unknown as GoogleAuth;
/** A client as the store builds one: default endpoint, or GCS_API_ENDPOINT. */
function storageFor(endpoint: string | undefined): Storage {
  const k = endpoint ?? '';
  if (!stores.has(k))
    stores.set(
      k,
      new Storage({
        authClient: auth,
        ...(endpoint !== undefined ? { apiEndpoint: endpoint, useAuthWithCustomEndpoint: true } : {}),
      }),
    );
  return stores.get(k)!;
}

after(() => mock.timers.reset());

describe('V4 signed URLs reproduce Google conformance cases', () => {
  const run = cases.filter((c) => notProduced(c) === undefined);
  const skipped = cases.filter((c) => notProduced(c) !== undefined);

  test('the cases the store can produce are most of them, and every skip has a reason', () => {
    assert.equal(cases.length, 29);
    assert.ok(run.length >= 13, `${run.length} cases run`);
    for (const c of skipped) assert.ok(notProduced(c)!.length > 0, c.description);
  });

  for (const c of run) {
    test(c.description, async () => {
      const now = new Date(c.timestamp);
      // The library refuses to sign an expiry in the past: sign at the case's time.
      mock.timers.enable({ apis: ['Date'], now: now.getTime() });
      try {
        const url = await signGcsUrl(storageFor(c.clientEndpoint), {
          method: c.method as 'GET' | 'PUT',
          bucket: c.bucket,
          key: c.object!,
          expiresInSeconds: c.expiration,
          headers: c.headers,
          queryParams: c.queryParameters,
          now,
        });
        assert.equal(url, c.expectedUrl);
      } finally {
        mock.timers.reset();
      }
    });
  }
});
