/**
 * docker-compose.yml and .env.example (issue 17 §3): Debian's `docker-compose config` accepts the
 * file with .env.example, and neither can drift from the configuration: every variable the Mediary
 * services are given is one `loadConfig` reads (the AWS SDK's two credential variables aside), the
 * resulting configuration is valid, and every variable of .env.example is used by the Compose
 * file, which uses none without a default that .env.example lacks.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/config.ts';
import { ROOT } from '../helpers/dockerd.ts';

/** Read by the AWS SDK's default credential chain, not by src/config.ts. */
const SDK_VARIABLES = new Set(['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']);
const MEDIARY_SERVICES = ['setup', 'api', 'worker'];

const composeFile = path.join(ROOT, 'docker-compose.yml');
/** The tests' override (test/deploy/compose.fault.ts runs the stack with it). */
const hostOverride = path.join(ROOT, 'deploy/docker/compose.test-host.yml');
const envFile = path.join(ROOT, '.env.example');

function envExample(): Map<string, string> {
  const vars = new Map<string, string>();
  for (const line of readFileSync(envFile, 'utf8').split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) vars.set(m[1]!, m[2]!);
  }
  return vars;
}

interface Compose {
  services: Record<
    string,
    { image?: string; environment?: Record<string, string | null>; network_mode?: string }
  >;
}

/** `docker-compose config` (validates, interpolates .env.example), its YAML read by PyYAML. */
function resolvedCompose(files = [composeFile], env: Record<string, string> = {}): Compose {
  const yaml = execFileSync(
    'docker-compose',
    ['--project-directory', ROOT, ...files.flatMap((f) => ['-f', f]), '--env-file', envFile, 'config'],
    { encoding: 'utf8', env: { PATH: process.env.PATH, ...env } },
  );
  // Debian's docker-compose is Python and depends on PyYAML: the same parser reads its output.
  const json = execFileSync(
    'python3',
    ['-c', 'import sys, json, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'],
    { input: yaml, encoding: 'utf8' },
  );
  return JSON.parse(json) as Compose;
}

test('docker-compose config accepts the file: Postgres, S3, setup, API and workers, started in order by health checks', () => {
  const compose = resolvedCompose();
  assert.deepEqual(Object.keys(compose.services).sort(), ['api', 'postgres', 's3', 'setup', 'worker']);
  const raw = readFileSync(composeFile, 'utf8');
  assert.match(raw, /condition: service_healthy/);
  assert.match(raw, /condition: service_completed_successfully/);
});

/** Every variable the Mediary services get is read by loadConfig, and the result is valid. */
function assertMediaryEnvironments(compose: Compose) {
  for (const name of MEDIARY_SERVICES) {
    const env = Object.fromEntries(
      Object.entries(compose.services[name]?.environment ?? {}).map(([k, v]) => [k, v ?? '']),
    );
    assert.ok(Object.keys(env).length > 5, `${name} has an environment`);
    const read = new Set<string>();
    const recording = new Proxy(env, {
      get(target, key) {
        if (typeof key === 'string') read.add(key);
        return target[key as string];
      },
    });
    // Valid as given (secrets long enough, URLs well formed, S3 complete)…
    const config = loadConfig(recording, '/data');
    assert.equal(config.storage.backend, 's3');
    assert.equal(config.database.kind, 'external');
    // …and nothing in it is ignored.
    const unknown = Object.keys(env).filter((k) => !read.has(k) && !SDK_VARIABLES.has(k));
    assert.deepEqual(unknown, [], `${name}: variables src/config.ts does not read`);
  }
}

test('every variable the Mediary services get is one the configuration reads', () => {
  assertMediaryEnvironments(resolvedCompose());
});

test('the tests’ host-network override validates: every service on the host network, the database on 127.0.0.1', () => {
  const compose = resolvedCompose([composeFile, hostOverride], { POSTGRES_PORT: '15432', S3_PORT: '19000' });
  assert.deepEqual(Object.keys(compose.services).sort(), ['api', 'postgres', 's3', 'setup', 'worker']);
  for (const [name, service] of Object.entries(compose.services)) {
    assert.equal(service.network_mode, 'host', name);
  }
  for (const name of MEDIARY_SERVICES) {
    assert.match(compose.services[name]?.environment?.DATABASE_URL ?? '', /@127\.0\.0\.1:15432\//);
  }
  assertMediaryEnvironments(compose);
});

test('.env.example and the Compose file use the same variables', () => {
  const example = envExample();
  const raw = readFileSync(composeFile, 'utf8');
  const used = new Map<string, boolean>(); // name → has a default in the file
  for (const m of raw.matchAll(/\$\{([A-Z][A-Z0-9_]*)(:-|:\?|-|\?)?[^}]*\}/g)) {
    const hasDefault = m[2] === ':-' || m[2] === '-';
    used.set(m[1]!, (used.get(m[1]!) ?? false) || hasDefault);
  }
  const unused = [...example.keys()].filter((k) => !used.has(k));
  assert.deepEqual(unused, [], '.env.example sets variables docker-compose.yml never uses');
  const missing = [...used].filter(([k, hasDefault]) => !hasDefault && !example.has(k)).map(([k]) => k);
  assert.deepEqual(missing, [], 'docker-compose.yml needs variables .env.example does not set');
});
