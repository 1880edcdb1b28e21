/**
 * A real Prometheus server (Debian's `prometheus`) scrapes a running Mediary: the target is up,
 * Mediary's series are queryable through Prometheus' own API (an upload session shows in
 * `mediary_upload_sessions_created_total`), and the alert rules of deploy/prometheus/alerts.yml are
 * loaded and evaluated without errors. The example configuration's shape, pointed at this server.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { fixture, sha256 } from '../helpers/files.ts';
import { call, freePort, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';

const DEPLOY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../deploy/prometheus');
const JPEG = fixture('cameras/Nikon_D70.jpg');

let t: TestServer;
let prom: ChildProcess | undefined;
let promUrl: string;
let promLog = '';

before(async () => {
  t = await startTestServer({ METRICS_PORT: '0' });
  const target = new URL(t.server.metricsUrl!).host;
  const dir = await tempDir('mediary-prometheus-');
  await copyFile(path.join(DEPLOY, 'alerts.yml'), path.join(dir, 'alerts.yml'));
  await writeFile(
    path.join(dir, 'prometheus.yml'),
    [
      'global:',
      '  scrape_interval: 1s',
      '  evaluation_interval: 1s',
      'rule_files:',
      '  - alerts.yml',
      'scrape_configs:',
      '  - job_name: mediary',
      '    static_configs:',
      `      - targets: ['${target}']`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prom = spawn(
    'prometheus',
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prom.stdout!.on('data', (c: Buffer) => (promLog += c.toString('utf8')));
  prom.stderr!.on('data', (c: Buffer) => (promLog += c.toString('utf8')));
});

after(async () => {
  prom?.kill('SIGTERM');
  await t?.close();
});

/** Asks Prometheus until `ok` holds for its answer (scrapes and evaluations take a few seconds). */
async function untilProm<T>(what: string, pathAndQuery: string, ok: (data: T) => boolean): Promise<T> {
  const deadline = Date.now() + 90_000;
  let last = '';
  for (;;) {
    try {
      const res = await fetch(`${promUrl}${pathAndQuery}`);
      const body = (await res.json()) as { status: string; data: T };
      last = JSON.stringify(body).slice(0, 500);
      if (body.status === 'success' && ok(body.data)) return body.data;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline) assert.fail(`${what}: ${last}\nprometheus said:\n${promLog.slice(-2000)}`);
    await sleep(250);
  }
}

type Vector = { result: { metric: Record<string, string>; value: [number, string] }[] };
const query = (q: string) => `/api/v1/query?query=${encodeURIComponent(q)}`;

test('Prometheus scrapes Mediary: the target is up and its series are queryable', async () => {
  await untilProm<Vector>('the target up', query('up{job="mediary"}'), (d) =>
    d.result.some((r) => r.value[1] === '1'),
  );
  const user = await t.user('prom-scrape');
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: user.auth,
    json: { fileName: 'p.jpg', mimeType: 'image/jpeg', bytes: JPEG.length, sha256: sha256(JPEG) },
  });
  assert.equal(s.status, 201, s.text);
  const sessions = await untilProm<Vector>(
    'the session in Prometheus',
    query('sum(mediary_upload_sessions_created_total{job="mediary"})'),
    (d) => Number(d.result[0]?.value[1] ?? 0) >= 1,
  );
  assert.ok(Number(sessions.result[0]!.value[1]) >= 1);
  // Labels as scraped: a route pattern, never an id.
  const routes = await untilProm<Vector>(
    'request durations by route',
    query('mediary_http_request_duration_seconds_count{job="mediary"}'),
    (d) => d.result.length > 0,
  );
  for (const r of routes.result) assert.doesNotMatch(r.metric.route ?? '', /[0-9a-f]{8}-[0-9a-f]{4}-/);
});

test('Prometheus loads the alert rules and evaluates them without errors', async () => {
  type Rules = { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
  const data = await untilProm<Rules>('the rules evaluated', '/api/v1/rules', (d) => {
    const rules = d.groups.flatMap((g) => g.rules);
    return rules.length > 0 && rules.every((r) => r.health !== 'unknown');
  });
  const rules = data.groups.flatMap((g) => g.rules);
  assert.equal(rules.length, 8, rules.map((r) => r.name).join(', '));
  for (const r of rules) assert.equal(r.health, 'ok', `${r.name}: ${r.lastError ?? ''}`);
});
