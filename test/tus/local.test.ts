/** tus on the local store (staging file under the store's .tus/, published by a hard link). */
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.ts';
import { TUS_ENV, tusProtocolSuite } from './protocol-suite.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer(TUS_ENV);
});
after(async () => {
  await t?.close();
});

tusProtocolSuite('the local store', () => t);

test('local: no staging file outlives its upload (finished, expired, cancelled, failed)', async () => {
  const left = await readdir(path.join(t.config.storage.dir, '.tus')).catch(() => [] as string[]);
  const rows = await t.server.database.pool.query<{ media_id: string }>('SELECT media_id FROM tus_uploads');
  const open = new Set(rows.rows.map((r) => r.media_id));
  assert.deepEqual(
    left.filter((f) => !open.has(f)),
    [],
  );
});
