import type { Config } from '../config.ts';
import { GcsObjectStore } from './gcs.ts';
import { LocalObjectStore, type StorageUrls } from './local.ts';
import { S3ObjectStore } from './s3.ts';
import type { ObjectStore } from './types.ts';

/** Builds a store for `backend` from the config (the configured one, or another for migrations). */
export function createStore(
  config: Pick<Config, 'storage' | 's3' | 'gcs' | 'multipart'>,
  backend: 'local' | 's3' | 'gcs',
  /** The local store's signed GET URLs (src/http/urls.ts); the bucket stores presign their own. */
  urls: StorageUrls,
): ObjectStore {
  switch (backend) {
    case 'local':
      return new LocalObjectStore(config.storage.dir, urls);
    case 's3': {
      if (!config.s3)
        throw new Error('the s3 backend needs S3_BUCKET (and S3_ENDPOINT for non-AWS services)');
      return new S3ObjectStore({
        ...config.s3,
        singlePutMaxBytes: config.multipart.thresholdBytes,
        partSize: config.multipart.partSizeBytes,
      });
    }
    case 'gcs': {
      if (!config.gcs) throw new Error('the gcs backend needs GCS_BUCKET');
      return new GcsObjectStore({
        ...config.gcs,
        singlePutMaxBytes: config.multipart.thresholdBytes,
        partSize: config.multipart.partSizeBytes,
      });
    }
  }
}
