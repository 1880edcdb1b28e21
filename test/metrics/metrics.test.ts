/**
 * Prometheus metrics (issue 21) on a real server and a real standalone worker: an upload that
 * succeeds, one that fails verification, processing by the worker; then /metrics is scraped and
 * parsed, and the counters, histograms and gauges must have moved — with no id in any label —
 * and /metrics must refuse who has no token, and not exist on the public port without one.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import sharp from 'sharp';
import { startWorkerProcess, type WorkerProcess } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { sha256 } from '../helpers/files.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';
import { upload, waitFor } from '../processing/helpers.ts';
import { exportedNames, has, metricNames, parseExposition, total, type Exposition } from './exposition.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const TOKEN = 'metrics-token-metrics-token-0123456789';
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

let t: TestServer;
let worker: WorkerProcess;
let device: { id: string; key: string; auth: Record<string, string> };
let okId: string;
let jpeg: Buffer;
/** Every log line of the API server and of the worker (JSON, as pino writes them). */
const apiLines: Record<string, unknown>[] = [];
const workerLines: Record<string, unknown>[] = [];

function capture(lines: Record<string, unknown>[]) {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n'))
        if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return pino({ level: 'info' }, sink);
}

async function scrape(url: string, token?: string): Promise<Exposition> {
  const res = await call(`${url}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(res.text);
}

before(async () => {
  // The API without its own worker: processing happens in the standalone worker below.
  t = await startTestServer(
    { METRICS_TOKEN: TOKEN, METRICS_PORT: '0', WORKER_ENABLED: 'false' },
    { logger: capture(apiLines) },
  );
  const workerConfig = loadConfig({ ...t.env, METRICS_PORT: '0', METRICS_TOKEN: '' });
  worker = await startWorkerProcess(workerConfig, capture(workerLines));
  device = await t.device('metrics-cam');
  jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#c84' } })
    .jpeg()
    .toBuffer();
  const ok = await upload(t, device.auth, jpeg);
  assert.equal(ok.done.status, 200, ok.done.text);
  okId = ok.id;
  await waitFor(t, device.auth, okId, ['READY']);
  // Declared a JPEG, sends text: completion refuses it (type_mismatch) and the upload FAILS.
  const text = Buffer.from('this is not a picture at all, just some text bytes'.repeat(4));
  const bad = await upload(t, device.auth, text);
  assert.equal(bad.done.status, 422, bad.done.text);
  assert.equal(bad.done.body.error.code, 'type_mismatch');
});

after(async () => {
  await worker?.close();
  await t?.close();
});

test('the API exposes upload, HTTP, store, queue and pool metrics, with route patterns and no ids', async () => {
  const m = await scrape(t.server.metricsUrl!, TOKEN);
  assert.ok(
    total(m, 'mediary_upload_sessions_created_total', { backend: 'local', media_type: 'image' }) >= 2,
  );
  assert.ok(total(m, 'mediary_uploads_completed_total', { backend: 'local' }) >= 1);
  assert.ok(total(m, 'mediary_upload_received_bytes_total', { backend: 'local' }) >= jpeg.length);
  assert.ok(total(m, 'mediary_uploads_failed_total', { backend: 'local', reason: 'type_mismatch' }) >= 1);
  assert.ok(
    total(m, 'mediary_upload_verification_failures_total', { backend: 'local', kind: 'type_mismatch' }) >= 1,
  );
  // HTTP: by route pattern and status class; a histogram with its buckets.
  const complete = { method: 'POST', route: '/api/v1/media/:id/complete' };
  assert.ok(
    total(m, 'mediary_http_request_duration_seconds_count', { ...complete, status_class: '2xx' }) >= 1,
  );
  assert.ok(
    total(m, 'mediary_http_request_duration_seconds_count', { ...complete, status_class: '4xx' }) >= 1,
  );
  assert.ok(has(m, 'mediary_http_request_duration_seconds_bucket', { ...complete, le: '+Inf' }));
  assert.ok(has(m, 'mediary_http_request_duration_seconds_bucket', { ...complete, le: '0.1' }));
  assert.equal(m.types.get('mediary_http_request_duration_seconds'), 'histogram');
  // The store wrapper: the PUT streamed into the local store, completion stat-ed it.
  for (const operation of ['put', 'stat'])
    assert.ok(
      total(m, 'mediary_store_operation_duration_seconds_count', { backend: 'local', operation }) >= 1,
    );
  // Sampled on scrape: the queues (every pg-boss queue, even empty) and the pool.
  assert.ok(has(m, 'mediary_queue_jobs', { queue: 'media-process', state: 'ready' }));
  assert.ok(has(m, 'mediary_queue_oldest_job_age_seconds', { queue: 'media-process' }));
  assert.ok(total(m, 'mediary_db_pool_max_connections') > 0);
  assert.ok(has(m, 'mediary_db_pool_connections', { state: 'idle' }));
  assert.ok(has(m, 'mediary_db_pool_waiting_clients'));
  assert.ok(has(m, 'process_cpu_seconds_total'), 'Node process metrics');
  // Bounded cardinality: no label carries a media, device or user id (or a key, or a URL).
  for (const s of m.samples) {
    for (const [k, v] of Object.entries(s.labels)) {
      assert.doesNotMatch(v, UUID, `${s.name} label ${k}="${v}" carries an id`);
      assert.ok(!v.includes(device.key) && !v.includes(okId), `${s.name} label ${k}="${v}"`);
      assert.doesNotMatch(v, /\?/, `${s.name} label ${k}="${v}" carries a query string`);
    }
  }
});

test('a standalone worker exposes its processing, store and queue metrics on its own listener', async () => {
  assert.ok(worker.metricsUrl, 'METRICS_PORT starts the worker’s listener');
  const m = await scrape(worker.metricsUrl); // no METRICS_TOKEN on this one: loopback only
  assert.ok(
    total(m, 'mediary_processing_duration_seconds_count', { kind: 'image', outcome: 'completed' }) >= 1,
  );
  assert.ok(has(m, 'mediary_processing_duration_seconds_bucket', { kind: 'image', le: '+Inf' }));
  assert.ok(
    total(m, 'mediary_store_operation_duration_seconds_count', { backend: 'local', operation: 'put' }) >= 1,
  );
  assert.ok(has(m, 'mediary_queue_jobs', { queue: 'media-process' }));
  assert.equal(total(m, 'mediary_upload_sessions_created_total'), 0, 'the worker opens no sessions');
  const url = new URL(worker.metricsUrl);
  assert.equal(url.hostname, '127.0.0.1', 'the listener binds to loopback by default');
});

test('/metrics refuses callers without the token, on the API port and on the listener', async () => {
  for (const base of [t.base, t.server.metricsUrl!]) {
    const none = await call(`${base}/metrics`);
    assert.equal(none.status, 401, `${base}: ${none.text}`);
    const wrong = await call(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}x` } });
    assert.equal(wrong.status, 401);
    assert.doesNotMatch(wrong.text, /mediary_/);
  }
  // The API port answers with the JSON error shape.
  const none = await call(`${t.base}/metrics`);
  assert.equal(none.body.error.code, 'unauthorized');
  // The listener serves /metrics and nothing else.
  assert.equal((await call(`${t.server.metricsUrl!}/api/v1/openapi.json`)).status, 404);
  await scrape(t.base, TOKEN);
});

test('without METRICS_TOKEN, /metrics is not on the public port (only on the loopback listener)', async () => {
  const other = await startTestServer({ METRICS_PORT: '0' });
  try {
    const res = await call(`${other.base}/metrics`);
    assert.equal(res.status, 404, res.text);
    const m = await scrape(other.server.metricsUrl!);
    assert.ok(has(m, 'mediary_db_pool_max_connections'));
    // Every answer names its request id, a UUID unless a proxy set a well-formed one.
    const h = await call(`${other.base}/healthz`);
    assert.match(h.headers.get('x-request-id') ?? '', UUID);
    const fwd = await call(`${other.base}/healthz`, { headers: { 'x-request-id': 'edge-1234abcd' } });
    assert.equal(fwd.headers.get('x-request-id'), 'edge-1234abcd');
  } finally {
    await other.close();
  }
});

test('completing before any bytes arrived counts one object_missing verification failure', async () => {
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: device.auth,
    json: { fileName: 'x', mimeType: 'image/jpeg', bytes: jpeg.length, sha256: sha256(jpeg) },
  });
  assert.equal(s.status, 201, s.text);
  const before = total(
    await scrape(t.server.metricsUrl!, TOKEN),
    'mediary_upload_verification_failures_total',
    {
      kind: 'object_missing',
    },
  );
  const done = await call(t.api(`/media/${s.body.mediaId}/complete`), {
    method: 'POST',
    headers: device.auth,
  });
  assert.equal(done.body.error.code, 'object_missing');
  const m = await scrape(t.server.metricsUrl!, TOKEN);
  assert.equal(
    total(m, 'mediary_upload_verification_failures_total', { kind: 'object_missing' }),
    before + 1,
  );
});

test('every expression of the Grafana dashboard and of the alert rules reads metrics the processes export', async () => {
  const names = new Set([
    ...exportedNames(await scrape(t.server.metricsUrl!, TOKEN)),
    ...exportedNames(await scrape(worker.metricsUrl!)),
    'up', // Prometheus' own, per target
  ]);
  const dashboard = JSON.parse(await readFile(path.join(ROOT, 'deploy/grafana/mediary.json'), 'utf8'));
  const exprs: string[] = [];
  const walk = (panels: any[]) => {
    for (const p of panels) {
      for (const target of p.targets ?? []) exprs.push(target.expr);
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  assert.ok(exprs.length >= 20, `the dashboard has ${exprs.length} queries`);
  const rules = await readFile(path.join(ROOT, 'deploy/prometheus/alerts.yml'), 'utf8');
  const ruleExprs = [...rules.matchAll(/expr: (?:\|\n((?: {10}.*\n)+)|(.*)\n)/g)].map((m) => m[1] ?? m[2]!);
  assert.equal(ruleExprs.length, 8, 'every alert rule’s expression was read');
  const read = new Set<string>();
  for (const expr of [...exprs, ...ruleExprs]) {
    for (const name of metricNames(expr)) {
      read.add(name);
      assert.ok(names.has(name), `${name} (in ${expr.trim()}) is not exported`);
    }
  }
  // The panels cover what issue 21 asks for.
  for (const name of [
    'mediary_http_request_duration_seconds_bucket',
    'mediary_upload_sessions_created_total',
    'mediary_uploads_completed_total',
    'mediary_uploads_failed_total',
    'mediary_upload_received_bytes_total',
    'mediary_upload_verification_failures_total',
    'mediary_processing_duration_seconds_bucket',
    'mediary_queue_jobs',
    'mediary_queue_oldest_job_age_seconds',
    'mediary_jobs_dead_lettered_total',
    'mediary_store_operation_duration_seconds_bucket',
    'mediary_store_operation_errors_total',
    'mediary_webhook_delivery_attempts_total',
    'mediary_db_pool_waiting_clients',
  ])
    assert.ok(read.has(name), `no panel or rule reads ${name}`);
});

test('one upload can be followed across the API by its mediaId', () => {
  const api = apiLines.filter((l) => l.mediaId === okId);
  const requests = new Map<string, string>();
  for (const l of api) {
    if (l.msg !== 'request completed') continue;
    requests.set(String(l.reqId), String((l.req as { url?: string } | undefined)?.url ?? ''));
  }
  // Opening the session (its id known only from the answer), the PUT and the completion.
  const completed = [...apiLines].filter((l) => l.msg === 'request completed' && l.mediaId === okId);
  assert.ok(completed.length >= 3, `request lines naming the media: ${completed.length}`);
  assert.ok(
    [...apiLines].some(
      (l) =>
        l.msg === 'incoming request' &&
        requests.has(String(l.reqId)) &&
        (l.req as { url?: string }).url === '/api/v1/media',
    ),
    'the session was opened by a request whose lines name the media',
  );
});

test('the worker’s lines for that upload’s job name its mediaId', () => {
  const job = workerLines.filter((l) => l.mediaId === okId).map((l) => l.msg);
  assert.ok(job.includes('job started') && job.includes('job finished'), `worker lines: ${job.join(', ')}`);
});

test('API request lines carry a request id (a UUID)', () => {
  for (const l of apiLines.filter((x) => x.mediaId === okId)) {
    if (l.msg !== 'request completed') continue;
    assert.match(String(l.reqId), UUID, 'request ids are UUIDs');
  }
  // Every request line has a request id.
  for (const l of apiLines) if (l.msg === 'request completed') assert.ok(typeof l.reqId === 'string');
});
