/**
 * Every backend passes the same ObjectStore contract (test/storage/store-contract.ts): local disk,
 * and S3 on a real Ceph RGW. A new store adds one storeContractSuite call here.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LocalObjectStore } from '../../src/storage/local.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { PublicUrls } from '../../src/http/urls.ts';
import { bucketStore, startCeph } from '../helpers/ceph.ts';
import { startTestServer } from '../helpers/server.ts';
import { storeContractSuite } from './store-contract.ts';

storeContractSuite(
  'local',
  async () => {
    // The local store's signed URLs are served by the API: run one on the same directory and secret.
    const t = await startTestServer();
    const secret = (await readFile(path.join(t.dataDir, 'signing.secret'), 'utf8')).trim();
    const store = new LocalObjectStore(
      t.config.storage.dir,
      new PublicUrls(new UrlSigner(secret), t.config.publicUrl),
    );
    return { store, close: () => t.close() };
  },
  { typeParam: 'ct', presigned: { put: false, parts: false } },
);

storeContractSuite(
  's3',
  async () => {
    const ceph = await startCeph();
    const store = bucketStore(ceph, 'mediary-contract');
    await store.setup({ corsOrigins: [] });
    return {
      store,
      async close() {
        store.destroy();
        await ceph.stop();
      },
    };
  },
  { typeParam: 'response-content-type', presigned: { put: true, parts: true } },
);
