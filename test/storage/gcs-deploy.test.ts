/**
 * The Cloud Run manifests (deploy/cloudrun/*.yaml) set only variables the config reads, take the
 * secrets from Secret Manager, probe /readyz, and run keyless: no key file anywhere.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { loadConfig } from '../../src/config.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = path.join(root, 'deploy/cloudrun');
const manifests = readdirSync(dir).filter((f) => f.endsWith('.service.yaml'));

/** Every `- name: X` of the containers' env lists, with whether it comes from a secret. */
export function envOf(yaml: string): { name: string; secret: boolean }[] {
  const lines = yaml.split('\n');
  const out: { name: string; secret: boolean }[] = [];
  let inEnv = false;
  let envIndent = 0;
  for (const [i, line] of lines.entries()) {
    const indent = line.search(/\S/);
    if (/^\s*env:\s*$/.test(line)) {
      inEnv = true;
      envIndent = indent;
      continue;
    }
    if (inEnv && indent !== -1 && indent <= envIndent && !line.trimStart().startsWith('#')) inEnv = false;
    const m = /^\s*- name: (\S+)\s*$/.exec(line);
    if (inEnv && m) out.push({ name: m[1]!, secret: /^\s*valueFrom:/.test(lines[i + 1] ?? '') });
  }
  return out;
}

/** The variable names the config modules (src/config/) read (every str/int/bool/url/origins lookup). */
function configNames(): Set<string> {
  const dir = path.join(root, 'src/config');
  const src = readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => readFileSync(path.join(dir, f), 'utf8'))
    .join('\n');
  return new Set(
    [...src.matchAll(/\b(?:str|int|bool|url|origins|oneOf)\(env, '([A-Z0-9_]+)'/g)].map((m) => m[1]!),
  );
}

describe('Cloud Run manifests', () => {
  const known = configNames();

  test('the config reader finds the config names, and the checker catches an unknown one', () => {
    for (const n of ['GCS_BUCKET', 'DATABASE_URL', 'STORAGE_BACKEND', 'GCS_SERVICE_ACCOUNT_EMAIL'])
      assert.ok(known.has(n), n);
    const bogus = envOf('      env:\n        - name: GCS_BUKCET\n          value: x\n');
    assert.deepEqual(bogus, [{ name: 'GCS_BUKCET', secret: false }]);
    assert.ok(!known.has('GCS_BUKCET'));
  });

  assert.ok(manifests.length >= 2, 'api and worker manifests');
  for (const file of manifests) {
    describe(file, () => {
      const yaml = readFileSync(path.join(dir, file), 'utf8');
      const env = envOf(yaml);

      test('every variable is one the config knows', () => {
        assert.ok(env.length > 5, 'env parsed');
        const unknown = env.filter((e) => !known.has(e.name)).map((e) => e.name);
        assert.deepEqual(unknown, [], `${file} sets variables src/config/ does not read`);
      });

      test('secrets come from Secret Manager', () => {
        for (const name of ['DATABASE_URL', 'SIGNING_SECRET', 'JWT_SECRET'])
          assert.deepEqual(
            env.find((e) => e.name === name),
            { name, secret: true },
            `${name} from Secret Manager`,
          );
      });

      test('keyless: no key file, signing goes through signBlob', () => {
        for (const keyVar of ['GCS_KEY_FILE', 'GOOGLE_APPLICATION_CREDENTIALS'])
          assert.ok(!env.some((e) => e.name === keyVar), `no ${keyVar}: signing goes through signBlob`);
      });

      test('a /readyz probe and the Cloud SQL instance', () => {
        assert.match(yaml, /path: \/readyz/);
        assert.match(yaml, /run\.googleapis\.com\/cloudsql-instances:/);
      });

      test('the values load as on Cloud Run, with placeholders filled in', () => {
        const values: Record<string, string> = {};
        for (const m of yaml.matchAll(/- name: (\S+)\n\s+value: '?([^'\n]*)'?/g)) values[m[1]!] = m[2]!;
        const config = loadConfig({
          ...values,
          PUBLIC_URL: 'https://mediary.example.com',
          GCS_BUCKET: 'my-bucket',
          DATABASE_URL: 'postgresql://mediary:pw@/mediary?host=/cloudsql/p:r:i',
          SIGNING_SECRET: 's'.repeat(32),
          JWT_SECRET: 'j'.repeat(32),
        });
        assert.equal(config.storage.backend, 'gcs');
        assert.equal(config.gcs?.keyFile, undefined);
        assert.match(config.gcs?.serviceAccountEmail ?? '', /@PROJECT_ID\.iam\.gserviceaccount\.com$/);
      });
    });
  }
});

describe('GCS configuration', () => {
  test('gcs needs GCS_BUCKET', () => {
    assert.throws(() => loadConfig({ STORAGE_BACKEND: 'gcs' }), /GCS_BUCKET is required/);
  });

  test('bad values stop start-up', () => {
    assert.throws(() => loadConfig({ STORAGE_BACKEND: 'gcs', GCS_BUCKET: 'Bad_Bucket!' }), /GCS_BUCKET/);
    assert.throws(
      () => loadConfig({ GCS_BUCKET: 'b-1', GCS_SERVICE_ACCOUNT_EMAIL: 'not an email' }),
      /GCS_SERVICE_ACCOUNT_EMAIL/,
    );
  });

  test('the key file falls back to GOOGLE_APPLICATION_CREDENTIALS, behind GCS_KEY_FILE', () => {
    const c = loadConfig(
      { STORAGE_BACKEND: 'gcs', GCS_BUCKET: 'b-1', GOOGLE_APPLICATION_CREDENTIALS: 'k.json' },
      '/srv',
    );
    assert.equal(c.gcs?.keyFile, '/srv/k.json');
    assert.equal(
      loadConfig({ GCS_BUCKET: 'b-1', GCS_KEY_FILE: '/a.json', GOOGLE_APPLICATION_CREDENTIALS: '/b.json' })
        .gcs?.keyFile,
      '/a.json',
      'GCS_KEY_FILE wins',
    );
  });

  test('no GCS settings: no GCS config', () => {
    assert.equal(loadConfig({}).gcs, undefined);
  });
});
