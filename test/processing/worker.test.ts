import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../../src/log.ts';
import type { Queryable } from '../../src/db/pool.ts';
import type { JobQueue } from '../../src/processing/ports.ts';
import { startWorker } from '../../src/processing/runtime.ts';
import { slotLanes } from '../../src/processing/worker.ts';
import { LocalObjectStore } from '../../src/storage/local.ts';
import { UrlSigner } from '../../src/storage/signing.ts';
import { PublicUrls } from '../../src/http/urls.ts';
import { call, startTestServer, testEnv, type TestServer } from '../helpers/server.ts';
import { fixture, FIXTURES } from '../helpers/files.ts';
import { bigJpeg, upload, waitFor } from './helpers.ts';

// No worker in the server: each test decides which workers run. Two attempts per job, no delay.
let t: TestServer;
before(async () => {
  t = await startTestServer({
    WORKER_ENABLED: 'false',
    PROCESSING_RETRY_LIMIT: '1',
    PROCESSING_RETRY_DELAY_SECONDS: '0',
    PROCESSING_POLL_INTERVAL_MS: '300',
  });
});
after(async () => {
  await t?.close();
});

test('slot lanes: a lone slot takes both lanes; of several, one keeps to images and the rest take videos first', () => {
  assert.deepEqual(slotLanes(0, 1), ['image', 'video']);
  assert.deepEqual(slotLanes(0, 2), ['image']);
  assert.deepEqual(slotLanes(1, 2), ['video', 'image']);
  assert.deepEqual(slotLanes(3, 4), ['video', 'image']);
});

function inProcessWorker(overrides: Partial<TestServer['config']['processing']> = {}, queue?: JobQueue) {
  const store = new LocalObjectStore(
    t.config.storage.dir,
    new PublicUrls(new UrlSigner('x'.repeat(32)), t.config.publicUrl),
  );
  return startWorker({
    pool: t.server.database.pool,
    queue: queue ?? t.server.queue,
    store,
    config: { ...t.config.processing, ...overrides },
    logger: createLogger('silent', 2),
  });
}

async function storagePath(id: string) {
  const { rows } = await t.server.database.pool.query('SELECT storage_key FROM media WHERE id = $1', [id]);
  return path.join(t.config.storage.dir, rows[0].storage_key);
}

/** The job's row once it left the active state (the row turns FAILED a moment before the job completes). */
async function settledJob(id: string) {
  for (let i = 0; i < 200; i++) {
    const j = await job(id);
    if (j.state !== 'active') return j;
    await sleep(25);
  }
  return job(id);
}

/** The job's row once it finished for good (completed or failed; not waiting for a retry). */
async function finishedJob(id: string) {
  for (let i = 0; i < 600; i++) {
    const j = await job(id);
    if (j.state === 'completed' || j.state === 'failed') return j;
    await sleep(50);
  }
  return job(id);
}

async function job(id: string) {
  const { rows } = await t.server.database.pool.query(
    `SELECT state, retry_count FROM pgboss.job WHERE name = 'media-process' AND data->>'mediaId' = $1
     ORDER BY created_on DESC LIMIT 1`,
    [id],
  );
  return rows[0] as { state: string; retry_count: number };
}

describe('worker lifecycle', () => {
  test('a worker SIGKILLed mid-job: the job is retried by another worker and completes', async () => {
    const user = await t.user('kill-user');
    const big = await bigJpeg(fixture('cameras/Canon_40D.jpg'), 6000, 4000);
    const { id, done } = await upload(t, user.auth, big);
    assert.equal(done.status, 200, done.text);

    const env = await testEnv(t.dataDir, {
      DATABASE_URL: t.databaseUrl,
      PROCESSING_CONCURRENCY: '1',
      // Not the server's settings: the queue's retry policy stays the server's (it owns it).
      PROCESSING_RETRY_LIMIT: '5',
      PROCESSING_RETRY_DELAY_SECONDS: '0',
    });
    const child = spawn(process.execPath, ['bin/mediary.mjs', 'worker'], {
      env: { ...process.env, ...env },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const st = await waitFor(t, user.auth, id, ['PROCESSING', 'READY', 'FAILED'], 60_000);
      assert.equal(st.status, 'PROCESSING', 'caught the worker mid-job');
      const { rows } = await t.server.database.pool.query<{ retry_limit: number }>(
        `SELECT retry_limit FROM pgboss.queue WHERE name = 'media-process'`,
      );
      assert.equal(rows[0]!.retry_limit, 1, 'a worker with other settings does not rewrite the queue policy');
      child.kill('SIGKILL');
      await exited;
      assert.equal((await job(id)).state, 'active', 'the job was left active by the dead worker');
    } finally {
      child.kill('SIGKILL');
    }

    const worker = await inProcessWorker();
    try {
      const end = await waitFor(t, user.auth, id, ['READY', 'FAILED'], 60_000);
      assert.equal(end.status, 'READY', JSON.stringify(end.error));
      assert.equal(end.attempts, 2);
      assert.match(end.lastError?.message ?? 'cleared on success', /cleared on success/);
      assert.deepEqual(await settledJob(id), { state: 'completed', retry_count: 1 });
      const m = await call(t.api(`/media/${id}`), { headers: user.auth });
      assert.deepEqual([m.body.width, m.body.height, m.body.variants.length], [6000, 4000, 4]);
    } finally {
      await worker.stop();
    }
  });

  test('graceful stop lets the running job finish', async () => {
    const user = await t.user('graceful-user');
    const { id } = await upload(t, user.auth, await bigJpeg(fixture('gps/DSCN0010.jpg'), 4000, 3000));
    const worker = await inProcessWorker();
    await waitFor(t, user.auth, id, ['PROCESSING', 'READY']);
    await worker.stop();
    const st = await call(t.api(`/media/${id}/status`), { headers: user.auth });
    assert.equal(st.body.status, 'READY');
    assert.equal((await settledJob(id)).state, 'completed');
  });
});

/**
 * The server's queue, watched: `merged` counts fetches made in the transaction that completed the
 * previous job; `failMerged` makes those fail (the claim part of a completion breaks).
 */
function watchedQueue(opts: { failMerged: boolean }) {
  const inner = t.server.queue;
  const completing = new WeakSet<Queryable>();
  const seen = { merged: 0, deadReads: 0 };
  const queue: JobQueue = {
    wakeChannel: inner.wakeChannel,
    enqueueProcessing: (tx, id, lane) => inner.enqueueProcessing(tx, id, lane),
    fetchProcessing: async (tx, lanes) => {
      if (completing.has(tx)) {
        seen.merged++;
        if (opts.failMerged) throw new Error('injected: the claim inside a completion fails');
      }
      return inner.fetchProcessing(tx, lanes);
    },
    complete: async (job, output, tx) => {
      if (tx) completing.add(tx);
      await inner.complete(job, output, tx);
    },
    fail: (job, error) => inner.fail(job, error),
    release: (job) => inner.release(job),
    fetchDead: (limit) => {
      seen.deadReads++;
      return inner.fetchDead(limit);
    },
    completeDead: (id) => inner.completeDead(id),
    failDead: (id, error) => inner.failDead(id, error),
    stop: () => inner.stop(),
  };
  return { queue, seen };
}

/** Each media READY once: its jobs, READY events, attempts and variants. */
async function readyOnce(ids: string[]) {
  const pool = t.server.database.pool;
  const { rows } = await pool.query<{
    id: string;
    jobs: string[];
    ready_events: number;
    attempts: number;
    variants: number;
  }>(
    `SELECT m.id,
            (SELECT array_agg(j.state || ':' || j.retry_count ORDER BY j.created_on) FROM pgboss.job j
              WHERE j.name = 'media-process' AND j.data->>'mediaId' = m.id::text) AS jobs,
            (SELECT count(*)::int FROM events e WHERE e.media_id = m.id AND e.type = 'media.ready') AS ready_events,
            m.processing_attempts AS attempts,
            (SELECT count(*)::int FROM media_variants v WHERE v.media_id = m.id) AS variants
       FROM media m WHERE m.id = ANY($1::uuid[]) ORDER BY m.id`,
    [ids],
  );
  return rows;
}

describe('a completion claims the slot’s next job in the same transaction', () => {
  /** Three uploads run by one slot (so completions claim the next); each must reach READY. */
  async function burst(userName: string, failMerged: boolean) {
    const user = await t.user(userName);
    const ids: string[] = [];
    for (const name of ['Canon_40D', 'Nikon_D70', 'Pentax_K10D']) {
      ids.push((await upload(t, user.auth, fixture(`cameras/${name}.jpg`))).id);
    }
    const { queue, seen } = watchedQueue({ failMerged });
    const worker = await inProcessWorker({ concurrency: 1 }, queue);
    try {
      for (const id of ids)
        assert.equal((await waitFor(t, user.auth, id, ['READY', 'FAILED'])).status, 'READY');
    } finally {
      await worker.stop();
    }
    return { ids, seen };
  }

  /** Each job completed once, on its first attempt, with one READY event and its four variants. */
  async function assertReadyOnce(ids: string[]) {
    for (const r of await readyOnce(ids)) {
      assert.deepEqual([r.jobs, r.ready_events, r.attempts, r.variants], [['completed:0'], 1, 1, 4], r.id);
    }
  }

  test('a burst runs through it: every job completes once, on its first attempt', async () => {
    const { ids, seen } = await burst('merged-claim-user', false);
    assert.ok(seen.merged >= 1, 'a completion looked for the next job');
    await assertReadyOnce(ids);
  });

  test('when that claim fails, the finished job still completes once, without spending an attempt', async () => {
    const { ids, seen } = await burst('merged-claim-fails-user', true);
    assert.ok(seen.merged >= 1, 'the failing claim was tried');
    await assertReadyOnce(ids);
  });

  test('enqueues wake the slots, not the dead-letter reader', async () => {
    const user = await t.user('dead-reader-user');
    // Polls far apart: whatever reads the dead-letter queue in this test was woken, not polled.
    const { queue, seen } = watchedQueue({ failMerged: false });
    const worker = await inProcessWorker({ concurrency: 1, pollIntervalMs: 60_000 }, queue);
    try {
      await sleep(200); // the reader's first look, at start
      const before = seen.deadReads;
      const ids: string[] = [];
      for (const name of ['Canon_40D', 'Nikon_D70', 'Pentax_K10D']) {
        ids.push((await upload(t, user.auth, fixture(`cameras/${name}.jpg`))).id);
      }
      for (const id of ids)
        assert.equal((await waitFor(t, user.auth, id, ['READY', 'FAILED'])).status, 'READY');
      assert.equal(seen.deadReads, before, 'no dead-letter read for an enqueue');
    } finally {
      await worker.stop();
    }
  });

  test('a worker SIGKILLed mid-burst: nothing is lost, nothing is done twice', async () => {
    const user = await t.user('kill-burst-user');
    const big = await bigJpeg(fixture('cameras/Canon_40D.jpg'), 5000, 3500);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++)
      ids.push((await upload(t, user.auth, big, 'image/jpeg', { fileName: `b${i}` })).id);
    const env = await testEnv(t.dataDir, {
      DATABASE_URL: t.databaseUrl,
      PROCESSING_CONCURRENCY: '1',
      PROCESSING_RETRY_LIMIT: '5',
      PROCESSING_RETRY_DELAY_SECONDS: '0',
    });
    const child = spawn(process.execPath, ['bin/mediary.mjs', 'worker'], {
      env: { ...process.env, ...env },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      // Killed once it has finished a job and claimed the next (through the completion's transaction).
      await waitFor(t, user.auth, ids[0]!, ['READY', 'FAILED'], 60_000);
      child.kill('SIGKILL');
      await exited;
    } finally {
      child.kill('SIGKILL');
    }
    const worker = await inProcessWorker();
    try {
      for (const id of ids) {
        const end = await waitFor(t, user.auth, id, ['READY', 'FAILED'], 60_000);
        assert.equal(end.status, 'READY', JSON.stringify(end.error));
      }
      // A job killed between its READY and its completion is retried, and that retry skips.
      for (const id of ids) assert.equal((await finishedJob(id)).state, 'completed', id);
    } finally {
      await worker.stop();
    }
    for (const r of await readyOnce(ids)) {
      // One job per media, completed (a retry of the one the dead worker held is the same job).
      assert.equal(r.jobs.length, 1, r.id);
      assert.match(r.jobs[0]!, /^completed:/, r.id);
      assert.deepEqual([r.ready_events, r.variants], [1, 4], r.id);
    }
  });
});

describe('retries and dead letters', () => {
  describe('transient failures, then retry-processing', () => {
    let user: { auth: Record<string, string> };
    let id: string;
    let file: string;
    let worker: Awaited<ReturnType<typeof inProcessWorker>> | undefined;
    before(async () => {
      user = await t.user('dlq-user');
      ({ id } = await upload(t, user.auth, fixture('cameras/Pentax_K10D.jpg')));
      file = await storagePath(id);
      renameSync(file, `${file}.away`); // the store loses the original: a retry might help, twice it does not
    });
    after(async () => {
      await worker?.stop();
    });

    test('only FAILED media can be retried', async () => {
      const notYet = await call(t.api(`/media/${id}/retry-processing`), {
        method: 'POST',
        headers: user.auth,
      });
      assert.equal(notYet.status, 409, 'only FAILED media can be retried');
    });

    test('transient failures are retried, then dead-lettered → FAILED', async () => {
      worker = await inProcessWorker();
      const st = await waitFor(t, user.auth, id, ['FAILED', 'READY'], 30_000);
      assert.equal(st.status, 'FAILED');
      assert.equal(st.error.code, 'processing_failed');
      assert.match(st.error.message, /original object is missing/);
      assert.equal(st.attempts, 2, 'one try + PROCESSING_RETRY_LIMIT=1 retry');
      assert.equal(st.lastError.code, 'processing_failed');
      const { rows } = await t.server.database.pool.query(
        `SELECT count(*)::int AS n FROM pgboss.job WHERE name = 'media-process-dead' AND data->>'mediaId' = $1`,
        [id],
      );
      assert.equal(rows[0].n, 1, 'one dead letter');
    });

    test('a stranger’s retry-processing is 404', async () => {
      const stranger = await t.user('dlq-stranger');
      const other = await call(t.api(`/media/${id}/retry-processing`), {
        method: 'POST',
        headers: stranger.auth,
      });
      assert.equal(other.status, 404);
    });

    test('retry-processing is 409 while the original is missing', async () => {
      const gone = await call(t.api(`/media/${id}/retry-processing`), { method: 'POST', headers: user.auth });
      assert.equal(gone.status, 409, 'nothing to process while the original is missing');
    });

    test('retry-processing requeues once the original is back, and it processes to READY', async () => {
      renameSync(`${file}.away`, file);
      const retry = await call(t.api(`/media/${id}/retry-processing`), {
        method: 'POST',
        headers: user.auth,
      });
      assert.equal(retry.status, 202, retry.text);
      assert.equal(retry.body.status, 'UPLOADED');
      const end = await waitFor(t, user.auth, id, ['READY', 'FAILED'], 30_000);
      assert.equal(end.status, 'READY', JSON.stringify(end.error));
      assert.deepEqual([end.attempts, end.error], [1, null]);
    });
  });

  test('bytes changed after completion (flipped, appended, truncated) fail the integrity check, without retries', async () => {
    const user = await t.user('integrity-user');
    const original = fixture('cameras/Nikon_D70.jpg');
    const flipped = Buffer.from(original);
    flipped.writeUInt8(flipped.readUInt8(flipped.length - 100) ^ 0xff, flipped.length - 100);
    const tamperings = {
      flipped: { bytes: flipped, message: /hash to/ },
      appended: { bytes: Buffer.concat([original, Buffer.from([0])]), message: /larger than the declared/ },
      truncated: { bytes: original.subarray(0, original.length - 1), message: /bytes, \d+ were declared/ },
    };
    const ids: Record<string, string> = {};
    for (const [how, { bytes }] of Object.entries(tamperings)) {
      const { id } = await upload(t, user.auth, original);
      writeFileSync(await storagePath(id), bytes);
      ids[how] = id;
    }
    const worker = await inProcessWorker();
    try {
      for (const [how, { message }] of Object.entries(tamperings)) {
        const id = ids[how]!;
        const st = await waitFor(t, user.auth, id, ['FAILED', 'READY']);
        assert.equal(st.status, 'FAILED', how);
        assert.equal(st.error.code, 'integrity', how);
        assert.match(st.error.message, message, how);
        assert.equal(st.attempts, 1, how);
        assert.equal((await settledJob(id)).state, 'completed', `${how}: an expected outcome, not a retry`);
      }
    } finally {
      await worker.stop();
    }
  });

  test('HEIC without heif-convert fails with a clear message', async () => {
    const user = await t.user('heic-missing');
    const heic = path.join(t.dataDir, 'x.heic');
    execFileSync('heif-enc', ['-q', '50', '-o', heic, path.join(FIXTURES, 'cameras/Canon_40D.jpg')], {
      stdio: 'ignore',
    });
    const { id } = await upload(t, user.auth, readFileSync(heic), 'image/heic');
    const worker = await inProcessWorker({ heifConvert: '/nonexistent/heif-convert' });
    try {
      const st = await waitFor(t, user.auth, id, ['FAILED', 'READY']);
      assert.deepEqual([st.status, st.error.code], ['FAILED', 'unsupported_type']);
      assert.equal(st.error.message, 'HEIC is not supported on this installation.');
    } finally {
      await worker.stop();
    }
  });

  test('without heif-convert on PATH at start, HEIC decodes through the wasm fallback, whether heif-convert appears or goes later', async () => {
    const user = await t.user('heic-installed-later');
    const heic = path.join(t.dataDir, 'later.heic');
    execFileSync('heif-enc', ['-q', '50', '-o', heic, path.join(FIXTURES, 'cameras/Canon_40D.jpg')], {
      stdio: 'ignore',
    });
    // A PATH holding only a temp dir: prlimit is there, heif-convert is not (yet).
    const bin = mkdtempSync(path.join(os.tmpdir(), 'mediary-path-'));
    symlinkSync(execFileSync('which', ['prlimit']).toString().trim(), path.join(bin, 'prlimit'));
    const heifConvert = execFileSync('which', ['heif-convert']).toString().trim();
    const savedPath = process.env.PATH;
    process.env.PATH = bin;
    const worker = await inProcessWorker({ heifConvert: 'heif-convert' });
    try {
      const first = await upload(t, user.auth, readFileSync(heic), 'image/heic');
      const st1 = await waitFor(t, user.auth, first.id, ['FAILED', 'READY']);
      // Without heif-convert on PATH the npm-shipped libheif (WebAssembly) decodes it (issue 17 §1).
      assert.deepEqual([st1.status, st1.error?.code], ['READY', undefined]);

      symlinkSync(heifConvert, path.join(bin, 'heif-convert'));
      const second = await upload(t, user.auth, readFileSync(heic), 'image/heic', { fileName: 'again' });
      const st2 = await waitFor(t, user.auth, second.id, ['FAILED', 'READY']);
      assert.equal(st2.status, 'READY', JSON.stringify(st2.error));

      // Removed again: the decoder chosen at start (the wasm fallback) still decodes it.
      rmSync(path.join(bin, 'heif-convert'));
      const third = await upload(t, user.auth, readFileSync(heic), 'image/heic', { fileName: 'third' });
      const st3 = await waitFor(t, user.auth, third.id, ['FAILED', 'READY']);
      assert.deepEqual([st3.status, st3.error?.code], ['READY', undefined]);
    } finally {
      process.env.PATH = savedPath;
      await worker.stop();
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
