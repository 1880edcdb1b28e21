/**
 * The shared ObjectStore contract (store-contract.ts) and the GCS signed header cases
 * (gcs-specific-suite.ts) against a real bucket (opt-in: `npm run test:gcs-real`, never part of
 * `npm test`). Needs GCS_TEST_BUCKET and credentials: GCS_KEY_FILE / GOOGLE_APPLICATION_CREDENTIALS,
 * or Application Default Credentials plus GCS_SERVICE_ACCOUNT_EMAIL for keyless signing. Use a
 * dedicated, empty bucket: the suite expects no other multipart uploads in it. Objects go under a
 * fresh prefix and are deleted by the tests.
 */
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../src/config.ts';
import { GcsObjectStore } from '../../src/storage/gcs.ts';
import { gcsSpecificSuite } from './gcs-specific-suite.ts';
import { storeContractSuite } from './store-contract.ts';

const MiB = 1024 * 1024;
const bucket = process.env.GCS_TEST_BUCKET;
if (!bucket) throw new Error('GCS_TEST_BUCKET is not set: this suite runs only against a real bucket');
const config = loadConfig({ ...process.env, STORAGE_BACKEND: 'gcs', GCS_BUCKET: bucket });
const store = new GcsObjectStore({ ...config.gcs!, singlePutMaxBytes: 5 * MiB, partSize: 5 * MiB });

const prefix = `mediary-contract-${randomUUID()}`;
storeContractSuite(
  `gcs (real bucket ${bucket})`,
  () => Promise.resolve({ store, close: () => Promise.resolve() }),
  {
    typeParam: 'response-content-type',
    presigned: { put: true, parts: true },
    prefix,
  },
);
gcsSpecificSuite(`gcs (real bucket ${bucket})`, () => store, prefix);
