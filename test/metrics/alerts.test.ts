/**
 * The alert rules and the example Prometheus configuration (deploy/prometheus/) as Prometheus'
 * own tool sees them: `promtool check rules`, `promtool check config`, and the rules' unit tests
 * (`promtool test rules alerts.test.yml`: every alert fires on its trouble and not otherwise).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../deploy/prometheus');
const exec = promisify(execFile);

async function promtool(...args: string[]) {
  try {
    const { stdout, stderr } = await exec('promtool', args, { cwd: DIR, timeout: 60_000 });
    return { ok: true, out: stdout + stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? e.message}` };
  }
}

test('promtool accepts the alert rules', async () => {
  const r = await promtool('check', 'rules', 'alerts.yml');
  assert.ok(r.ok, r.out);
  assert.match(r.out, /SUCCESS: 8 rules found/);
});

test('promtool accepts the example configuration (and the rule file it loads)', async () => {
  const r = await promtool('check', 'config', 'prometheus.yml');
  assert.ok(r.ok, r.out);
});

test('the alert rules pass their unit tests (promtool test rules)', async () => {
  const r = await promtool('test', 'rules', 'alerts.test.yml');
  assert.ok(r.ok, r.out);
  assert.match(r.out, /SUCCESS/);
});
