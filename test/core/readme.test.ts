/**
 * The README's curl walk-through, taken from README.md and run as written (only the address
 * changes) against a real server: once, then steps 2–4 again — the replay the README promises
 * returns the same media, and its snippet must cope with `"upload": null`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { walkThrough } from '../helpers/readme.ts';
import { startTestServer, tempDir, type TestServer } from '../helpers/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const exec = promisify(execFile);

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t.close();
});

test('the README walk-through runs as written, and again: the replay answers the same media', async () => {
  const block = walkThrough();
  const step2 = block.indexOf('# 2.');
  assert.ok(step2 > 0, 'the walk-through has a step 2');
  const port = new URL(t.base).port;
  const local = (s: string) => s.replaceAll('localhost:8080', `127.0.0.1:${port}`);

  // A scratch project where `npx mediary` is this checkout (as in a clone after `npm ci`).
  const dir = await tempDir('mediary-readme-');
  await mkdir(path.join(dir, 'node_modules/.bin'), { recursive: true });
  await symlink(path.join(ROOT, 'bin/mediary.mjs'), path.join(dir, 'node_modules/.bin/mediary'));
  await writeFile(path.join(dir, 'package.json'), '{"name":"walk-through","private":true}\n');
  const photo = await sharp({
    create: { width: 32, height: 24, channels: 3, background: { r: 200, g: 80, b: 20 } },
  })
    .jpeg()
    .toBuffer();
  await writeFile(path.join(dir, 'photo.jpg'), photo);

  const script = [
    'set -eo pipefail',
    local(block),
    'echo "FIRST=$ID"',
    // Steps 2–4 again, as the README's last line invites.
    local(block.slice(step2)),
    'echo "SECOND=$ID"',
  ].join('\n');
  const { stdout } = await exec('bash', ['-c', script], {
    cwd: dir,
    env: { ...process.env, ...t.env, npm_config_offline: 'true', npm_config_update_notifier: 'false' },
    maxBuffer: 16 * 1024 * 1024,
  });
  const first = /FIRST=(\S+)/.exec(stdout)?.[1];
  const second = /SECOND=(\S+)/.exec(stdout)?.[1];
  assert.match(first ?? '', /^[0-9a-f-]{36}$/, 'the walk-through created a media');
  assert.equal(second, first, 'the replay answers the same media');
  assert.deepEqual(await readFile(path.join(dir, 'copy.jpg')), photo, 'the download is the photo');
  assert.deepEqual(await readFile(path.join(dir, 'head.bin')), photo.subarray(0, 100), 'the range');
});
