/**
 * The real `mediary` process: admin commands beside a running server, SIGKILL in the middle of
 * an upload (orphaned postmaster, stale pid file), restart, and a clean SIGTERM shutdown.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { rm } from 'node:fs/promises';
import { call, tempDir, testEnv } from '../helpers/server.ts';
import { fixture, sha256 } from '../helpers/files.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/mediary.mjs');
const run = promisify(execFile);
const JPEG = fixture('cameras/Pentax_K10D.jpg');

const children: ChildProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await sleep(200);
  for (const d of dirs) {
    // Stop any postmaster a killed server left, then remove the data.
    const pidFile = path.join(d, 'postgres', 'postmaster.pid');
    if (existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // already gone
      }
    }
  }
  await sleep(500);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function startServe(env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  return child;
}

async function waitReady(base: string, child: ChildProcess) {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error('server did not become ready');
}

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((r) => child.once('exit', (code) => r(code)));
}

describe('the mediary process', () => {
  describe('a server restarted after a crash', () => {
    let dataDir: string;
    let env: Awaited<ReturnType<typeof testEnv>>;
    let base: string;
    const api = (p: string) => `${base}/api/v1${p}`;
    let server: ReturnType<typeof startServe>;
    let device: { id: string; apiKey: string };
    let auth: Record<string, string>;
    let mediaId: string;
    const body = {
      fileName: 'p.jpg',
      mimeType: 'image/jpeg',
      bytes: JPEG.length,
      sha256: sha256(JPEG),
      messageId: 'crash-1',
    };

    test('admin CLI commands work beside a running server', async () => {
      dataDir = await tempDir();
      dirs.push(dataDir);
      env = await testEnv(dataDir, { LOG_LEVEL: 'warn' });
      base = env.PUBLIC_URL!;

      server = startServe(env);
      await waitReady(base, server);

      // Admin commands use the running server's database instead of starting a second one.
      const created = await run(process.execPath, [BIN, 'devices', 'create', '--name', 'cam-1', '--json'], {
        env: { ...process.env, ...env },
      });
      device = JSON.parse(created.stdout) as { id: string; apiKey: string };
      assert.match(device.apiKey, /^mdk_/);
      const listed = await run(process.execPath, [BIN, 'devices', 'list', '--json'], {
        env: { ...process.env, ...env },
      });
      assert.deepEqual(
        (JSON.parse(listed.stdout) as { id: string }[]).map((d) => d.id),
        [device.id],
      );
      const token = (
        await run(process.execPath, [BIN, 'users', 'token', '--user', 'u-cli'], {
          env: { ...process.env, ...env },
        })
      ).stdout.trim();
      assert.equal(
        (await call(api('/users/me/media'), { headers: { authorization: `Bearer ${token}` } })).status,
        200,
      );
    });

    test('SIGKILL mid-upload leaves nothing partial after a restart', async () => {
      auth = { authorization: `Bearer ${device.apiKey}` };
      const s = await call(api('/media'), { method: 'POST', headers: auth, json: body });
      assert.equal(s.status, 201);
      mediaId = s.body.mediaId as string;

      // Send half the bytes, wait until the server is writing them, then SIGKILL it.
      const tmpDir = path.join(dataDir, 'objects', '.tmp');
      const url = new URL(s.body.upload.url as string);
      const req = request({
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: 'PUT',
        headers: { 'content-type': 'image/jpeg', 'content-length': String(JPEG.length) },
      });
      req.on('error', () => undefined);
      req.write(JPEG.subarray(0, JPEG.length / 2));
      const deadline = Date.now() + 10_000;
      while (!(existsSync(tmpDir) && readdirSync(tmpDir).length > 0)) {
        assert.ok(Date.now() < deadline, 'the upload reached the server');
        await sleep(20);
      }
      server.kill('SIGKILL');
      await exited(server);
      req.destroy();

      // Restart on the same data dir: the orphaned postmaster is dealt with.
      server = startServe(env);
      await waitReady(base, server);
      const key = `${device.id}/default/${new Date().toISOString().slice(0, 10)}/crash-1.jpg`;
      assert.ok(!existsSync(path.join(dataDir, 'objects', key)), 'no partial object under the real key');
      const meta = await call(api(`/media/${mediaId}`), { headers: auth });
      assert.equal(meta.body.status, 'PENDING', 'not UPLOADED, not READY');
      assert.equal(
        (await call(api(`/media/${mediaId}/complete`), { method: 'POST', headers: auth })).status,
        409,
      );
    });

    test('repeating the flow after the restart finishes the same upload', async () => {
      // Repeating the flow finishes the same upload.
      const again = await call(api('/media'), { method: 'POST', headers: auth, json: body });
      assert.equal(again.status, 200);
      assert.equal(again.body.mediaId, mediaId);
      assert.equal(
        (
          await call(again.body.upload.url, {
            method: 'PUT',
            headers: { 'content-type': 'image/jpeg' },
            body: JPEG,
          })
        ).status,
        200,
      );
      const done = await call(api(`/media/${mediaId}/complete`), { method: 'POST', headers: auth });
      assert.match(done.body.status, /^(UPLOADED|PROCESSING|READY)$/);
      const dl = await fetch(api(`/media/${mediaId}/download?mode=proxy`), { headers: auth });
      assert.equal(sha256(Buffer.from(await dl.arrayBuffer())), sha256(JPEG));
    });

    test('SIGTERM stops the server and its Postgres cleanly', async () => {
      // SIGTERM: graceful stop, embedded Postgres stopped with it.
      server.kill('SIGTERM');
      assert.equal(await exited(server), 0);
      assert.ok(!existsSync(path.join(dataDir, 'postgres', 'postmaster.pid')), 'postgres stopped');
    });
  });

  test('a bad configuration value fails fast naming the variable', async () => {
    const dataDir = await tempDir();
    dirs.push(dataDir);
    const env = await testEnv(dataDir, { PORT: 'eighty' });
    const child = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    assert.equal(await exited(child), 2);
    assert.match(stderr, /PORT must be a whole number, got "eighty"/);
  });
});
