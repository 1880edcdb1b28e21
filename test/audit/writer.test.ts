/**
 * The audit writer of read records, as a unit over a fake database: `record` never waits or
 * throws, the buffer is bounded (overflow dropped and counted), failed batches are counted, and
 * the writer goes on once the database answers again.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { withOrigin } from '../../src/audit/context.ts';
import { AuditWriter } from '../../src/audit/writer.ts';

const logger = pino({ level: 'silent' });
const entry = (mediaId: string) => ({
  action: 'media.downloaded' as const,
  actor: { kind: 'user' as const, userId: 'u' },
  mediaId,
});

/** A database whose INSERTs hang until `release()`, then succeed or fail as told. */
function fakeDb() {
  const batches: Record<string, unknown>[][] = [];
  let release!: () => void;
  let gate = new Promise<void>((r) => (release = r));
  let fail = false;
  return {
    batches,
    release: () => release(),
    hang: () => (gate = new Promise<void>((r) => (release = r))),
    failing: (v: boolean) => (fail = v),
    db: {
      query: async (_sql: string, params: unknown[]) => {
        await gate;
        if (fail) throw new Error('relation "audit_log" is not writable');
        batches.push(JSON.parse(params[0] as string) as Record<string, unknown>[]);
        return { rows: [], rowCount: 0 };
      },
    },
  };
}

test('record never waits: a hung database fills a bounded buffer, the overflow is dropped and counted', async () => {
  const f = fakeDb();
  const writer = new AuditWriter(f.db as never, logger, { maxBuffered: 10, batchSize: 4 });
  for (let i = 0; i < 25; i++) writer.record(entry(`m${i}`));
  await sleep(10);
  // The first batch is in flight (hung); the buffer holds the rest up to its bound.
  const held = writer.stats();
  assert.equal(held.written, 0);
  assert.ok(held.dropped > 0 && held.buffered <= 10, JSON.stringify(held));
  f.release();
  await writer.close();
  const done = writer.stats();
  assert.equal(done.written + done.dropped, 25, JSON.stringify(done));
  assert.equal(done.buffered, 0);
  assert.ok(f.batches.every((b) => b.length <= 4));
});

describe('a failing database', () => {
  const f = fakeDb();
  let writer: AuditWriter;

  test('loses only the failed batches', async () => {
    f.release();
    f.failing(true);
    writer = new AuditWriter(f.db as never, logger);
    assert.doesNotThrow(() => writer.record(entry('lost')));
    await sleep(20);
    assert.equal(writer.stats().failed, 1);
  });

  test('later rows are written, with their origin', async () => {
    f.failing(false);
    withOrigin({ ip: '203.0.113.7', userAgent: 'ua/1', requestId: 'req-1' }, () =>
      writer.record(entry('kept')),
    );
    await writer.close();
    assert.equal(writer.stats().written, 1);
    const row = f.batches.flat()[0]!;
    assert.equal(row.media_id, 'kept');
    assert.equal(row.ip, '203.0.113.7');
    assert.equal(row.user_agent, 'ua/1');
    assert.equal(row.request_id, 'req-1');
  });
});
