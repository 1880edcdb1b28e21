/**
 * Every installed package runs on the Node versions package.json promises (`npm ci` on Node 20
 * prints no EBADENGINE): a dependency that needs a newer Node is pinned or overridden.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import semver from 'semver';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface LockEntry {
  dev?: boolean;
  os?: string[];
  cpu?: string[];
  dependencies?: Record<string, string>;
}

/**
 * Test dependencies that only ever run inside Chromium (bundled by esbuild into a test page), never
 * on Node: their own dependencies' engines.node does not concern us. (Uppy 6 needs nanoid 6,
 * p-retry 8 and prettier-bytes 2, which declare Node 22, though none of them runs on Node here.)
 */
const BROWSER_ONLY = /^node_modules\/@uppy\//;

/** True when every package that depends on `name` is a browser-only test dependency. */
function onlyForTheBrowser(lock: Record<string, LockEntry>, name: string): boolean {
  const dependents = Object.entries(lock).filter(([, e]) => e.dependencies && name in e.dependencies);
  return dependents.length > 0 && dependents.every(([where, e]) => e.dev && BROWSER_ONLY.test(where));
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** Packages of the lock file whose engines.node excludes part of what we promise. */
function offenders(ours: string): string[] {
  const lock = readJson<{ packages: Record<string, LockEntry> }>(path.join(ROOT, 'package-lock.json'));
  const bad: string[] = [];
  for (const [where, entry] of Object.entries(lock.packages)) {
    if (where === '' || !existsSync(path.join(ROOT, where, 'package.json'))) continue; // not installed here
    if (entry.os && !entry.os.includes(process.platform)) continue;
    if (entry.cpu && !entry.cpu.includes(process.arch)) continue;
    const manifest = readJson<{ version: string; engines?: { node?: string } }>(
      path.join(ROOT, where, 'package.json'),
    );
    const theirs = manifest.engines?.node;
    if (!theirs) continue;
    if (entry.dev && onlyForTheBrowser(lock.packages, where.replace(/^.*node_modules\//, ''))) continue;
    // What the service runs with must work on every Node we promise; tools used only to develop
    // and test must at least work on some Node of our lowest major.
    const ok = entry.dev
      ? semver.intersects(theirs, `${ours} <${semver.minVersion(ours)!.major + 1}`)
      : semver.subset(ours, theirs);
    if (!ok) bad.push(`${where}@${manifest.version} needs node ${theirs}`);
  }
  return bad;
}

test('every installed dependency supports the Node versions in package.json engines', () => {
  const ours = readJson<{ engines: { node: string } }>(path.join(ROOT, 'package.json')).engines.node;
  assert.ok(semver.validRange(ours), `engines.node ${ours} is a range`);
  assert.deepEqual(offenders(ours), []);
});

test('the check can fail: a promise of Node 18 is broken by today’s dependencies', () => {
  assert.notDeepEqual(offenders('>=18'), []);
});
