/**
 * The `mediary` client commands as a user runs them: `--help` on every command and subcommand,
 * `mediary upload` of the same file twice (one media unless `--new`), and `media list` with a
 * device key (the key names the device).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { COMMAND_NAMES, commandHelp, wantsHelp } from '../../src/cli/help.ts';
import { call, startTestServer, tempDir, type TestServer } from '../helpers/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/mediary.mjs');
const exec = promisify(execFile);

async function mediary(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...env },
      cwd: ROOT,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let t: TestServer;
let dir: string;
before(async () => {
  t = await startTestServer();
  dir = await tempDir('mediary-cli-');
});
after(async () => {
  await t.close();
});

async function png(name: string, seed: number): Promise<string> {
  const file = path.join(dir, name);
  const bytes = await sharp({
    create: { width: 16, height: 16, channels: 3, background: { r: seed, g: 100, b: 200 } },
  })
    .png()
    .toBuffer();
  await writeFile(file, bytes);
  return file;
}

describe('mediary --help', () => {
  test('every command and subcommand has help with its usage, options and an example', () => {
    for (const name of COMMAND_NAMES) {
      const words = name.split(' ');
      const args = [...words.slice(1), '--help'];
      assert.ok(wantsHelp(args), name);
      const help = commandHelp(words[0]!, args);
      assert.ok(help !== undefined, `${name} has help`);
      assert.match(help, new RegExp(`^Usage: mediary ${name}`), name);
      assert.match(help, /\nExample:\n {2}.*mediary /, `${name} has an example`);
    }
  });

  test('`mediary upload --help` answers with its options', async () => {
    const upload = await mediary(['upload', '--help']);
    assert.equal(upload.code, 0, upload.stderr);
    assert.doesNotMatch(upload.stdout + upload.stderr, /Unknown option/i);
    for (const flag of ['--wait', '--concurrency', '--camera', '--new', '--json', '--server', '--key']) {
      assert.ok(upload.stdout.includes(flag), `upload --help names ${flag}`);
    }
  });

  test('`mediary media --help` answers with its subcommands and options', async () => {
    const media = await mediary(['media', '--help']);
    assert.equal(media.code, 0, media.stderr);
    for (const sub of ['media list', 'media get', 'media download']) assert.ok(media.stdout.includes(sub));
    assert.ok(media.stdout.includes('--status'));
  });

  test('the `mediary --help` overview names every command and their options', async () => {
    const top = await mediary(['--help']);
    assert.equal(top.code, 0);
    for (const name of COMMAND_NAMES) assert.ok(top.stdout.includes(`  ${name}`), `overview has ${name}`);
    for (const flag of ['--concurrency', '--new', '--status', '--cursor', '--output']) {
      assert.ok(top.stdout.includes(flag), `overview names ${flag}`);
    }
  });
});

describe('mediary upload of the same file again', () => {
  describe('a device', () => {
    let device: Awaited<ReturnType<TestServer['device']>>;
    let env: Record<string, string>;
    let file: string;
    let a: { mediaId: string; created: boolean };

    test('the second upload returns the first media', async () => {
      device = await t.device('cli-dev');
      env = { MEDIARY_SERVER: t.base, MEDIARY_KEY: device.key, MEDIARY_STATE_DIR: dir };
      file = await png('same.png', 1);
      const first = await mediary(['upload', file, '--json'], env);
      assert.equal(first.code, 0, first.stderr);
      [a] = JSON.parse(first.stdout);
      assert.equal(a.created, true);
      const second = await mediary(['upload', file, '--json'], env);
      assert.equal(second.code, 0, second.stderr);
      const [b] = JSON.parse(second.stdout);
      assert.equal(b.mediaId, a.mediaId, 'the same media');
      assert.equal(b.created, false);

      const list = await call(t.api(`/devices/${device.id}/media`), { headers: device.auth });
      assert.equal(list.body.items.length, 1, 'one media for one file');
    });

    test('--new makes another', async () => {
      const forced = await mediary(['upload', file, '--new', '--json'], env);
      assert.equal(forced.code, 0, forced.stderr);
      const [c] = JSON.parse(forced.stdout);
      assert.notEqual(c.mediaId, a.mediaId);
      assert.equal(c.created, true);
      const after = await call(t.api(`/devices/${device.id}/media`), { headers: device.auth });
      assert.equal(after.body.items.length, 2);
    });

    test('other bytes are another media', async () => {
      const other = await mediary(['upload', await png('other.png', 2), '--json'], env);
      assert.notEqual(JSON.parse(other.stdout)[0].mediaId, a.mediaId);
    });
  });

  test('a user: the second upload returns the first media', async () => {
    const user = await t.user('cli-user');
    const env = { MEDIARY_SERVER: t.base, MEDIARY_KEY: user.token, MEDIARY_STATE_DIR: dir };
    const file = await png('user.png', 3);
    const first = await mediary(['upload', file, '--json'], env);
    assert.equal(first.code, 0, first.stderr);
    const second = await mediary(['upload', file, '--json'], env);
    assert.equal(second.code, 0, second.stderr);
    assert.equal(JSON.parse(second.stdout)[0].mediaId, JSON.parse(first.stdout)[0].mediaId);
    const list = await call(t.api('/users/me/media'), { headers: user.auth });
    assert.equal(list.body.items.length, 1);
  });
});

describe('mediary media list', () => {
  test('a device key lists its own media without --device', async () => {
    const device = await t.device('cli-list');
    const env = { MEDIARY_SERVER: t.base, MEDIARY_KEY: device.key, MEDIARY_STATE_DIR: dir };
    const up = await mediary(['upload', await png('listed.png', 4), '--json'], env);
    assert.equal(up.code, 0, up.stderr);
    const listed = await mediary(['media', 'list', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(
      JSON.parse(listed.stdout).items.map((m: { mediaId: string }) => m.mediaId),
      [JSON.parse(up.stdout)[0].mediaId],
    );
  });

  test('`me` names only a device: a user asking for /devices/me/media gets 404', async () => {
    const user = await t.user('cli-me');
    const res = await call(t.api('/devices/me/media'), { headers: user.auth });
    assert.equal(res.status, 404);
    assert.equal(res.body.error.code, 'not_found');
  });
});
