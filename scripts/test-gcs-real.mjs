#!/usr/bin/env node
// `npm run test:gcs-real`: the GCS contract suite against a real bucket. Not part of `npm test`
// (no Google Cloud is reachable in CI); fails, never skips, when it cannot run.
import { spawnSync } from 'node:child_process';

if (!process.env.GCS_TEST_BUCKET) {
  console.error(
    'GCS_TEST_BUCKET is not set. Set it to a dedicated empty bucket, with credentials in GCS_KEY_FILE /\n' +
      'GOOGLE_APPLICATION_CREDENTIALS, or Application Default Credentials plus GCS_SERVICE_ACCOUNT_EMAIL.',
  );
  process.exit(1);
}
const res = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', '--test-reporter=spec', 'test/storage/gcs-real.real.ts'],
  { stdio: 'inherit' },
);
process.exit(res.status ?? 1);
