/**
 * Every status change of a media is one guarded UPDATE (src/media/transitions.ts) whose guard is
 * the lifecycle table: on real Postgres, each transition moves a row exactly from the states the
 * table allows and leaves a row in any other state untouched.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { Pool } from '../../src/db/pool.ts';
import {
  allows,
  failure,
  MEDIA_STATUSES,
  TRANSITIONS,
  type MediaStatus,
  type TransitionName,
} from '../../src/media/lifecycle.ts';
import { insertMedia } from '../../src/media/repo.ts';
import * as transitions from '../../src/media/transitions.ts';
import { startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
let pool: Pool;
before(async () => {
  t = await startTestServer({ WORKER_ENABLED: 'false', SWEEP_INTERVAL_SECONDS: '0' });
  pool = t.server.database.pool;
});
after(async () => {
  await t?.close();
});

async function mediaIn(status: MediaStatus): Promise<string> {
  const id = randomUUID();
  await insertMedia(pool, {
    id,
    ownerUserId: 'u-transitions',
    deviceId: null,
    cameraId: null,
    messageId: null,
    idempotencyKey: null,
    capturedAt: new Date(),
    reason: null,
    mediaType: 'image',
    mimeType: 'image/jpeg',
    fileName: 'a.jpg',
    bytes: 10,
    sha256: null,
    storageBackend: 'local',
    storageKey: `image/u-transitions/${id}.jpg`,
    storageUri: `file:///${id}`,
    uploadExpiresAt: new Date(Date.now() + 60_000),
    uploadedBy: 'user',
    purpose: 'library',
    deviceOwnerUserId: null,
  });
  // Test set-up only: put the row straight into the state under test.
  await pool.query('UPDATE media SET status = $2 WHERE id = $1', [id, status]);
  return id;
}

const statusOf = async (id: string) =>
  (await pool.query<{ status: MediaStatus }>('SELECT status FROM media WHERE id = $1', [id])).rows[0]!.status;

const run: Record<TransitionName, (id: string) => Promise<boolean>> = {
  complete: async (id) =>
    (await transitions.markUploaded(pool, id, {
      sha256: null,
      etag: '"e"',
      detectedMime: 'image/jpeg',
      backend: 'local',
      uri: `file:///${id}`,
    })) !== undefined,
  failUpload: (id) => transitions.failUpload(pool, id, failure('cancelled')),
  startProcessing: async (id) => (await transitions.startProcessing(pool, id, 1)) !== undefined,
  finishProcessing: (id) =>
    transitions.markReady(pool, id, {
      width: 1,
      height: 1,
      metadata: {},
      gps: null,
      placeholder: null,
      detectedMime: 'image/jpeg',
      variants: [],
    }),
  failProcessing: (id) => transitions.markProcessingFailed(pool, id, failure('decode_failed')),
  retryProcessing: (id) => transitions.resetForRetry(pool, id),
  delete: (id) => transitions.markDeleted(pool, id),
  loseBytes: (id) => transitions.markBytesLost(pool, id),
};

for (const name of Object.keys(TRANSITIONS) as TransitionName[]) {
  test(`${name}: moves a media only from ${TRANSITIONS[name].from.join('/')}, refuses every other state`, async () => {
    for (const from of MEDIA_STATUSES) {
      const id = await mediaIn(from);
      const moved = await run[name](id);
      const now = await statusOf(id);
      if (allows(name, from)) {
        assert.equal(moved, true, `${name} from ${from}`);
        assert.equal(now, TRANSITIONS[name].to, `${name} from ${from}`);
      } else {
        assert.equal(moved, false, `${name} from ${from} must be refused`);
        assert.equal(now, from, `${name} from ${from} must change nothing`);
      }
    }
  });
}
