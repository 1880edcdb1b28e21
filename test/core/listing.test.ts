import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t?.close();
});

interface Item {
  mediaId: string;
  capturedAt: string;
  cameraId: string;
  status: string;
}

async function session(
  auth: Record<string, string>,
  capturedAt: string,
  cameraId: string,
  messageId: string,
) {
  const res = await call(t.api('/media'), {
    method: 'POST',
    headers: auth,
    json: { fileName: 'f.jpg', mimeType: 'image/jpeg', bytes: 100, capturedAt, cameraId, messageId },
  });
  assert.equal(res.status, 201, res.text);
  return res.body.mediaId as string;
}

async function allPages(url: string, auth: Record<string, string>, limit: number) {
  const seen: Item[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const sep = url.includes('?') ? '&' : '?';
    const res = await call(
      `${url}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      {
        headers: auth,
      },
    );
    assert.equal(res.status, 200, res.text);
    assert.ok(res.body.items.length <= limit);
    seen.push(...(res.body.items as Item[]));
    cursor = res.body.nextCursor;
    pages++;
    assert.ok(pages < 100, 'paging terminates');
  } while (cursor);
  return { seen, pages };
}

describe('listing a device’s media', () => {
  let dev: { id: string; auth: Record<string, string> };
  let expectedOrder: string[];
  before(async () => {
    dev = await t.device();
    const other = await t.device();
    const same = '2026-11-01T12:00:00.123456Z';
    const ids: { id: string; at: string; cam: string }[] = [];
    for (let i = 0; i < 5; i++)
      ids.push({ id: await session(dev.auth, same, 'a', `same-${i}`), at: same, cam: 'a' });
    ids.push({
      id: await session(dev.auth, '2026-11-02T00:00:00Z', 'b', 'later'),
      at: '2026-11-02T00:00:00Z',
      cam: 'b',
    });
    ids.push({
      id: await session(dev.auth, '2026-10-01T00:00:00Z', 'b', 'earlier'),
      at: '2026-10-01T00:00:00Z',
      cam: 'b',
    });
    await session(other.auth, '2026-11-03T00:00:00Z', 'a', 'not-mine');

    expectedOrder = [...ids]
      .sort((x, y) => (x.at === y.at ? (x.id < y.id ? 1 : -1) : Date.parse(y.at) - Date.parse(x.at)))
      .map((x) => x.id);
  });

  test('newest capture first, ties by id, stable across pages with equal capture times', async () => {
    for (const limit of [1, 2, 3, 100]) {
      const { seen, pages } = await allPages(t.api(`/devices/${dev.id}/media`), dev.auth, limit);
      assert.deepEqual(
        seen.map((i) => i.mediaId),
        expectedOrder,
        `limit ${limit}`,
      );
      assert.equal(pages, Math.max(1, Math.ceil(expectedOrder.length / limit)));
    }
  });

  test('filters by camera', async () => {
    const camB = await allPages(t.api(`/devices/${dev.id}/media?cameraId=b`), dev.auth, 1);
    assert.deepEqual(
      camB.seen.map((i) => i.cameraId),
      ['b', 'b'],
    );
  });

  test('filters by capture time: since inclusive, until exclusive', async () => {
    const window = await allPages(
      t.api(`/devices/${dev.id}/media?since=2026-11-01T00:00:00Z&until=2026-11-02T00:00:00Z`),
      dev.auth,
      2,
    );
    assert.equal(window.seen.length, 5, 'since is inclusive, until exclusive');
  });

  test('filters by status', async () => {
    const pending = await call(t.api(`/devices/${dev.id}/media?status=PENDING&limit=100`), {
      headers: dev.auth,
    });
    assert.equal(pending.body.items.length, 7);
    const ready = await call(t.api(`/devices/${dev.id}/media?status=READY`), { headers: dev.auth });
    assert.deepEqual(ready.body.items, []);
  });

  test('bad paging input → 400 naming the problem', async () => {
    const dev = await t.device();
    const base = t.api(`/devices/${dev.id}/media`);
    const cases: [string, string][] = [
      ['?limit=0', 'validation_failed'],
      ['?limit=101', 'validation_failed'],
      ['?limit=abc', 'validation_failed'],
      ['?cursor=not-a-cursor', 'invalid_cursor'],
      [`?cursor=${Buffer.from('["x","y"]').toString('base64url')}`, 'invalid_cursor'],
      ['?status=DELETED', 'validation_failed'],
      ['?since=yesterday', 'validation_failed'],
      ['?since=2016-12-31T23:59:60Z', 'validation_failed'],
      ['?until=0000-06-01T00:00:00Z', 'validation_failed'],
      ['?cameraId=a%00b', 'validation_failed'],
      // Cursors Date.parse accepts but Postgres does not (each was a 500), and a BC timestamp.
      ...['1', 'Z 2020', '2020-01-01 junk?', '2020-02-30 10:00:00+00', '0001-12-31 00:01:00+00 BC'].map(
        (at): [string, string] => [
          `?cursor=${Buffer.from(JSON.stringify([at, '7d5b6a52-4f0e-4c53-9d57-0b3f1f0c8a11'])).toString('base64url')}`,
          'invalid_cursor',
        ],
      ),
      ['?unknown=1', 'validation_failed'],
    ];
    for (const [q, code] of cases) {
      const res = await call(base + q, { headers: dev.auth });
      assert.equal(res.status, 400, q);
      assert.equal(res.body.error.code, code, q);
    }
    const badId = await call(t.api('/devices/not-a-uuid/media'), { headers: dev.auth });
    assert.equal(badId.status, 400);
  });
});
