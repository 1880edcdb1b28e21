/**
 * The ObjectStore contract on the GCS store, against our GCS stand-in (test/helpers/gcs-standin.ts:
 * it verifies every V4 signature and bearer token with the dummy service account's key and
 * enforces the signed headers): the shared contract suite (store-contract.ts), the GCS signed
 * header cases (gcs-specific-suite.ts, also run on a real bucket), plus what only the stand-in can
 * show: signing through signBlob, refused credentials, the bucket setup.
 */
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { OAuth2Client } from 'google-auth-library';
import { GcsObjectStore } from '../../src/storage/gcs.ts';
import { SignBlobAuth } from '../../src/storage/gcs-signing.ts';
import { GCS_CLIENT_EMAIL, GCS_KEY_FILE, startGcsStandin, type GcsStandin } from '../helpers/gcs-standin.ts';
import { MiB } from '../helpers/multipart-suite.ts';
import { gcsSpecificSuite } from './gcs-specific-suite.ts';
import { storeContractSuite } from './store-contract.ts';

let gcs: GcsStandin;
let store: GcsObjectStore;

before(async () => {
  gcs = await startGcsStandin();
  gcs.createBucket('contract');
  store = new GcsObjectStore({
    bucket: 'contract',
    apiEndpoint: gcs.endpoint,
    keyFile: GCS_KEY_FILE,
    singlePutMaxBytes: 5 * MiB,
    partSize: 5 * MiB,
  });
});
after(async () => {
  await gcs?.close();
});

// The stand-in and the store are made by the file's before hook (the specifics below share them).
storeContractSuite(
  'gcs (on the stand-in)',
  () => Promise.resolve({ store, close: () => Promise.resolve() }),
  { typeParam: 'response-content-type', presigned: { put: true, parts: true } },
);
gcsSpecificSuite('gcs (on the stand-in)', () => store);

const body = (buf: Buffer) => Readable.from([buf]);

describe('GCS specifics', () => {
  const data = Buffer.from('gcs bytes '.repeat(500));

  test('keyless: URLs signed through the IAM signBlob API of the service account are accepted', async () => {
    await store.put('g/keyless.txt', body(data), { contentType: 'text/plain', bytes: data.length });
    // The runtime's own access token (on Cloud Run: the metadata server's); no key anywhere.
    const token = new OAuth2Client();
    token.setCredentials({ access_token: 'runtime-token', expiry_date: Date.now() + 3600_000 });
    const keyless = new GcsObjectStore({
      bucket: 'contract',
      apiEndpoint: gcs.endpoint,
      signingEndpoint: gcs.signingEndpoint,
      singlePutMaxBytes: 5 * MiB,
      partSize: 5 * MiB,
      auth: new SignBlobAuth(GCS_CLIENT_EMAIL, { authClient: token }),
    });
    const before = gcs.signBlobCalls;
    const url = await keyless.signedGetUrl('g/keyless.txt', {
      expiresInSeconds: 60,
      contentType: 'text/plain',
      contentDisposition: 'inline',
    });
    assert.equal(gcs.signBlobCalls, before + 1, 'signed by signBlob, not locally');
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), data);
    // Every URL is a fresh signBlob call: nothing cached that would outlive a revoked permission.
    await keyless.signedGetUrl('g/keyless.txt', {
      expiresInSeconds: 60,
      contentType: 'text/plain',
      contentDisposition: 'inline',
    });
    assert.equal(gcs.signBlobCalls, before + 2);
    await store.delete('g/keyless.txt');
  });

  test('requests without valid credentials are refused by the stand-in (it checks them)', async () => {
    const res = await fetch(`${gcs.endpoint}/storage/v1/b/contract/o`);
    assert.equal(res.status, 401);
    const forged = await fetch(
      `${gcs.endpoint}/contract/x?X-Goog-Signature=00&X-Goog-Algorithm=GOOG4-RSA-SHA256`,
    );
    assert.equal(forged.status, 403);
  });

  describe('setup', () => {
    let fresh: GcsObjectStore;
    before(() => {
      fresh = new GcsObjectStore({
        bucket: 'setup-bucket',
        apiEndpoint: gcs.endpoint,
        keyFile: GCS_KEY_FILE,
        singlePutMaxBytes: 5 * MiB,
        partSize: 5 * MiB,
      });
    });

    test('creates the bucket with uniform access and public access prevention, and applies CORS', async () => {
      const first = await fresh.setup({ corsOrigins: ['https://app.example.com'] });
      assert.ok(first.includes('bucket setup-bucket created'), first.join('\n'));
      const meta = gcs.buckets.get('setup-bucket')!.meta as {
        iamConfiguration: { uniformBucketLevelAccess: { enabled: boolean }; publicAccessPrevention: string };
        cors: { origin: string[]; method: string[] }[];
      };
      assert.equal(meta.iamConfiguration.uniformBucketLevelAccess.enabled, true);
      assert.equal(meta.iamConfiguration.publicAccessPrevention, 'enforced');
      assert.deepEqual(meta.cors[0]?.origin, ['https://app.example.com']);
      assert.ok(meta.cors[0]?.method.includes('PUT'));
    });

    test('rerunning it is safe', async () => {
      const again = await fresh.setup({ corsOrigins: ['https://app.example.com'] });
      assert.ok(again.includes('bucket setup-bucket exists'), again.join('\n'));
    });
  });

  test('uri is gs://bucket/key', () => {
    assert.equal(store.uri('a/b.jpg'), 'gs://contract/a/b.jpg');
  });
});
