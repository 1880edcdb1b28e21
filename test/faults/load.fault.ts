/**
 * Load: 200 devices upload small photos concurrently (session → PUT → complete, over and over) for
 * FAULT_LOAD_SECONDS (default 60), with admission control at its default bound. Zero errors
 * allowed; a session refused for the processing backlog must say so (503 processing_backlog +
 * Retry-After) and is sent again after the wait, as a client would; every completed upload must be
 * UPLOADED (or further) with its object on disk. Prints p50/p95/p99 per step and per whole upload.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import type pg from 'pg';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEFAULT_MAX_BACKLOG_SECONDS } from '../../src/config/load.ts';
import { tempDir, testEnv } from '../helpers/server.ts';
import { fixture } from '../helpers/files.ts';
import {
  embeddedUrl,
  makeDevices,
  percentile,
  poolFor,
  recordFaultResults,
  spawnService,
  type ServiceProcess,
} from '../helpers/process.ts';

const SECONDS = Number(process.env.FAULT_LOAD_SECONDS ?? 60);
const CONCURRENCY = Number(process.env.FAULT_LOAD_CONCURRENCY ?? 200);
const JPEG = fixture('cameras/Canon_40D.jpg');
const JPEG_SHA = createHash('sha256').update(JPEG).digest('hex');

let dataDir: string;
let svc: ServiceProcess;
let db: pg.Pool;
let devices: { id: string; auth: Record<string, string> }[];

before(async () => {
  dataDir = await tempDir('mediary-fault-load-');
  const env = await testEnv(dataDir, {
    LOG_LEVEL: 'warn',
    ADMISSION_MAX_BACKLOG_SECONDS: String(DEFAULT_MAX_BACKLOG_SECONDS),
  });
  svc = await spawnService(env);
  db = poolFor(embeddedUrl(dataDir, env.EMBEDDED_PG_PORT!));
  devices = await makeDevices(db, CONCURRENCY, 'load');
});

after(async () => {
  await db?.end();
  await svc?.kill('SIGTERM');
  if (!process.env.FAULT_KEEP) await rm(dataDir, { recursive: true, force: true });
});

const fmt = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `p50 ${percentile(s, 50).toFixed(1)} ms, p95 ${percentile(s, 95).toFixed(1)} ms, p99 ${percentile(s, 99).toFixed(1)} ms`;
};

test(`${CONCURRENCY} concurrent small uploads for ${SECONDS} s: zero errors`, async () => {
  const lat = {
    session: [] as number[],
    put: [] as number[],
    complete: [] as number[],
    flow: [] as number[],
  };
  const errors: string[] = [];
  const completed: string[] = [];
  let refused = 0;
  const deadline = Date.now() + SECONDS * 1000;

  async function timed(kind: keyof typeof lat, url: string, init: RequestInit, expect: number) {
    let t0 = performance.now();
    let res: Response;
    let text: string;
    for (;;) {
      // The latency of the attempt that was answered, not of the waits Retry-After asked for.
      t0 = performance.now();
      try {
        res = await fetch(url, init);
      } catch (err) {
        errors.push(`${kind}: ${(err as Error).message}`);
        return undefined;
      }
      text = await res.text();
      const wait = Number(res.headers.get('retry-after'));
      if (kind !== 'session' || res.status !== 503 || !text.includes('"processing_backlog"')) break;
      // Admission control: told when to come back, the client sends the same request again.
      if (!(wait >= 1)) {
        errors.push(`session: 503 processing_backlog without Retry-After`);
        return undefined;
      }
      refused++;
      if (Date.now() + wait * 1000 >= deadline) return undefined;
      await sleep(wait * 1000);
    }
    lat[kind].push(performance.now() - t0);
    if (res.status !== expect) {
      errors.push(`${kind}: ${res.status} ${text.slice(0, 200)}`);
      return undefined;
    }
    return JSON.parse(text) as Record<string, unknown>;
  }

  await Promise.all(
    devices.map(async (dev, w) => {
      for (let n = 0; Date.now() < deadline; n++) {
        const t0 = performance.now();
        const s = await timed(
          'session',
          svc.api('/media'),
          {
            method: 'POST',
            headers: { ...dev.auth, 'content-type': 'application/json' },
            body: JSON.stringify({
              fileName: 'p.jpg',
              mimeType: 'image/jpeg',
              bytes: JPEG.length,
              sha256: JPEG_SHA,
              messageId: `w${w}-${n}`,
            }),
          },
          201,
        );
        if (!s) continue;
        const up = await timed(
          'put',
          (s.upload as { url: string }).url,
          { method: 'PUT', headers: { 'content-type': 'image/jpeg' }, body: JPEG },
          200,
        );
        if (!up) continue;
        const id = s.mediaId as string;
        const done = await timed(
          'complete',
          svc.api(`/media/${id}/complete`),
          { method: 'POST', headers: dev.auth },
          200,
        );
        if (!done) continue;
        lat.flow.push(performance.now() - t0);
        completed.push(id);
      }
    }),
  );

  const requests = lat.session.length + lat.put.length + lat.complete.length + errors.length;
  const perSecond = (completed.length / SECONDS).toFixed(1);
  console.log(
    `[load] ${completed.length} uploads (${perSecond}/s), ${requests} requests, ${errors.length} errors, ${refused} sessions refused for the backlog (retried after Retry-After)`,
  );
  for (const k of Object.keys(lat) as (keyof typeof lat)[]) console.log(`[load] ${k}: ${fmt(lat[k])}`);

  // Every acknowledged upload is past UPLOADED (the worker may be on it) with its object; nothing else was created.
  const { rows } = await db.query<{ id: string; status: string; storage_uri: string }>(
    `SELECT id, status, storage_uri FROM media WHERE id = ANY($1::uuid[])`,
    [completed],
  );
  const missing = rows.filter(
    (r) => !['UPLOADED', 'PROCESSING', 'READY'].includes(r.status) || !existsSync(r.storage_uri),
  );
  await recordFaultResults('load', [
    {
      scenario: `load: ${CONCURRENCY} devices × small uploads for ${SECONDS} s`,
      trials: requests,
      survived: requests - errors.length,
      notes: `${completed.length} uploads (${perSecond}/s), ${refused} sessions refused for the backlog; upload ${fmt(lat.flow)}`,
    },
  ]);
  assert.deepEqual(errors.slice(0, 10), [], `${errors.length} errors`);
  assert.ok(completed.length >= CONCURRENCY, 'every device finished at least one upload');
  assert.equal(rows.length, completed.length);
  assert.deepEqual(missing, []);
});
