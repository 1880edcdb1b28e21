/**
 * Session creation's INSERT and the read of one media (findMedia) are named prepared statements
 * with the media columns spelled out (MEDIA_COLUMNS). The list must match the table, and a column added while the server runs (a
 * rolling deploy's migration) must not break the prepared statement on live connections.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { findMedia, MEDIA_COLUMNS } from '../../src/media/repo.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t?.close();
});

test('MEDIA_COLUMNS lists exactly the media table’s columns', async () => {
  const { rows } = await t.server.database.pool.query<{ column_name: string }>(
    `SELECT column_name FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = 'media' ORDER BY ordinal_position`,
  );
  assert.deepEqual([...MEDIA_COLUMNS].sort(), rows.map((r) => r.column_name).sort());
});

test('sessions keep working on live connections after a column is added to media', async () => {
  const dev = await t.device('prepared');
  const session = (n: number) =>
    call(t.api('/media'), {
      method: 'POST',
      headers: dev.auth,
      json: { fileName: `p${n}.jpg`, mimeType: 'image/jpeg', bytes: 10, messageId: `m-${n}` },
    });
  // Enough sessions that every pooled connection has prepared the statement.
  const before = await Promise.all(Array.from({ length: 40 }, (_, i) => session(i)));
  for (const r of before) assert.equal(r.status, 201, r.text);
  await t.server.database.pool.query('ALTER TABLE media ADD COLUMN test_added_later text');
  try {
    const afterAdd = await Promise.all(Array.from({ length: 40 }, (_, i) => session(100 + i)));
    for (const r of afterAdd) assert.equal(r.status, 201, r.text);
    // The response is the same shape as before: the owner join and the view are intact.
    assert.equal(afterAdd[0]!.body.media.deviceId, dev.id);
    assert.equal(afterAdd[0]!.body.status, 'PENDING');
  } finally {
    await t.server.database.pool.query('ALTER TABLE media DROP COLUMN test_added_later');
  }
});

test('reading a media (findMedia) is a named statement that survives a column added under it', async () => {
  const dev = await t.device('prepared-read');
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: dev.auth,
    json: { fileName: 'r.jpg', mimeType: 'image/jpeg', bytes: 10, messageId: 'read-1' },
  });
  assert.equal(s.status, 201, s.text);
  const id = s.body.mediaId as string;
  const read = () => call(t.api(`/media/${id}`), { headers: dev.auth });
  const pool = t.server.database.pool;
  const db = await pool.connect();
  try {
    const row = await findMedia(db, id, { prepared: true });
    assert.equal(row?.id, id);
    const named = await db.query(`SELECT 1 FROM pg_prepared_statements WHERE name = 'mediary-find-media'`);
    assert.equal(named.rowCount, 1, 'prepared on this connection');
  } finally {
    db.release();
  }
  // Enough reads that every pooled connection has prepared it (the server reads with it by default).
  const before = await Promise.all(Array.from({ length: 40 }, read));
  for (const r of before) assert.equal(r.status, 200, r.text);
  await pool.query('ALTER TABLE media ADD COLUMN test_read_later text');
  try {
    const afterAdd = await Promise.all(Array.from({ length: 40 }, read));
    for (const r of afterAdd) assert.equal(r.status, 200, r.text);
    assert.deepEqual(afterAdd[0]!.body, before[0]!.body);
    assert.equal((await findMedia(pool, id, { prepared: true }))?.id, id);
  } finally {
    await pool.query('ALTER TABLE media DROP COLUMN test_read_later');
  }
});
