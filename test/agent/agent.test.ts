/**
 * The camera agent: the spool's disk bound, a replayed capture after a crash, and the real
 * `mediary agent` process capturing through a server outage (server stopped and restarted,
 * agent restarted meanwhile) — every capture arrives exactly once, backlog oldest first.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Agent } from '../../src/agent/agent.ts';
import { Spool } from '../../src/agent/spool.ts';
import { MediaryClient } from '../../src/client/node.ts';
import { createLogger } from '../../src/log.ts';
import { FIXTURES } from '../helpers/files.ts';
import { call, startTestServer, tempDir, testEnv } from '../helpers/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin/mediary.mjs');
const JPEG = path.join(FIXTURES, 'cameras/Nikon_D70.jpg');
const run = promisify(execFile);
const silent = createLogger('silent', 2);

const children: ChildProcess[] = [];
const dirs: string[] = [];
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await sleep(200);
  for (const d of dirs) {
    const pidFile = path.join(d, 'postgres', 'postmaster.pid');
    if (existsSync(pidFile)) {
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8').split('\n')[0]), 'SIGINT');
      } catch {
        // already gone
      }
    }
  }
  await sleep(500);
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const queued = (spool: string) =>
  existsSync(path.join(spool, 'queue')) ? readdirSync(path.join(spool, 'queue')).length : 0;

function exited(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((r) => child.once('exit', (code) => r(code)));
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    assert.ok(Date.now() < deadline, `timed out waiting for: ${what}`);
    await sleep(100);
  }
}

describe('the spool', () => {
  describe('limits and names', () => {
    let dir: string;
    let left: Awaited<ReturnType<Spool['list']>>;

    test('past max files the oldest captures are dropped', async () => {
      dir = await tempDir('mediary-spool-');
      dirs.push(dir);
      const spool = new Spool(dir, { maxBytes: 1e9, maxFiles: 3 }, silent);
      await spool.init();
      for (let i = 0; i < 5; i++) {
        const f = spool.incomingPath('jpg');
        await writeFile(f, `capture ${i}`);
        await spool.commit(f, new Date(Date.UTC(2026, 0, 1, 0, 0, i)));
      }
      left = await spool.list();
      assert.deepEqual(
        left.map((e) => e.capturedAt.toISOString()),
        ['2026-01-01T00:00:02.000Z', '2026-01-01T00:00:03.000Z', '2026-01-01T00:00:04.000Z'],
      );
    });

    test('names carry capture time and a content hash', () => {
      assert.match(left[0]!.messageId, /^20260101T000002000Z_[0-9a-f]{16}$/);
    });

    test('past max bytes the oldest captures are dropped', async () => {
      // Byte bound too: 3 files of 9 bytes, limit 20 bytes → 2 left.
      const small = new Spool(dir, { maxBytes: 20, maxFiles: 100 }, silent);
      await small.enforceLimits();
      assert.equal((await small.list()).length, 2);
    });
  });

  test('a capture uploaded but not yet removed when the agent died is a replay, not a duplicate', async () => {
    const t = await startTestServer();
    try {
      const device = await t.device('cam-replay');
      const dir = await tempDir('mediary-spool-');
      dirs.push(dir);
      const spool = new Spool(dir, { maxBytes: 1e9, maxFiles: 100 }, silent);
      const client = new MediaryClient({ server: t.base, key: device.key });
      const agent = new Agent({
        client,
        spool,
        logger: silent,
        cameraId: 'front',
        concurrency: 2,
        maxBackoffMs: 1000,
      });
      await spool.init();
      const at = new Date('2026-05-01T12:00:00.000Z');
      const f1 = spool.incomingPath('jpg');
      await copyFile(JPEG, f1);
      const entry = await spool.commit(f1, at);
      await agent.drain(true);
      assert.equal((await spool.list()).length, 0);
      // Same capture again (as if the process died between completion and removal).
      const f2 = spool.incomingPath('jpg');
      await copyFile(JPEG, f2);
      const again = await spool.commit(f2, at);
      assert.equal(again.messageId, entry.messageId, 'the message id is derived from the capture');
      await agent.drain(true);
      const list = await call(t.api(`/devices/${device.id}/media`), { headers: device.auth });
      assert.equal(list.body.items.length, 1);
      assert.equal(list.body.items[0].messageId, entry.messageId);
      assert.equal(list.body.items[0].cameraId, 'front');
    } finally {
      await t.close();
    }
  });
});

describe('mediary agent', () => {
  test('server stopped and restarted, agent restarted meanwhile: every capture arrives exactly once, oldest first', async () => {
    const dataDir = await tempDir();
    const work = await tempDir('mediary-agent-');
    dirs.push(dataDir, work);
    const env = await testEnv(dataDir, { LOG_LEVEL: 'warn' });
    const base = env.PUBLIC_URL!;
    const serve = () => {
      const c = spawn(process.execPath, [BIN, 'serve'], { env: { ...process.env, ...env }, stdio: 'ignore' });
      children.push(c);
      return c;
    };
    const ready = () =>
      until('server ready', async () => (await fetch(`${base}/readyz`).catch(() => null))?.status === 200);

    let server = serve();
    await ready();
    const created = await run(process.execPath, [BIN, 'devices', 'create', '--name', 'cam', '--json'], {
      env: { ...process.env, ...env },
    });
    const device = JSON.parse(created.stdout) as { id: string; apiKey: string };
    const auth = { authorization: `Bearer ${device.apiKey}` };
    type Item = { messageId: string; sha256: string; capturedAt: string; createdAt: string };
    // Every page: under load the agent captures well over one page (100) before the test ends.
    const listAll = async () => {
      const items: Item[] = [];
      let cursor: string | null = null;
      do {
        const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
        const res = await call(`${base}/api/v1/devices/${device.id}/media?limit=100${q}`, { headers: auth });
        items.push(...(res.body.items as Item[]));
        cursor = res.body.nextCursor as string | null;
      } while (cursor);
      return items;
    };

    const spool = path.join(work, 'spool');
    const ledger = path.join(work, 'ledger');
    // Each capture is unique (a timestamp trailer after the JPEG) and is written down in the ledger.
    const capture = `cat '${JPEG}' > {output} && date +%s%N >> {output} && echo x >> '${ledger}'`;
    const agentEnv = {
      ...process.env,
      MEDIA_ENABLED: 'true',
      MEDIARY_SERVER: base,
      MEDIARY_KEY: device.apiKey,
      MEDIARY_CAMERA: 'front',
      LOG_LEVEL: 'info',
    };
    const startAgent = () => {
      const c = spawn(
        process.execPath,
        [BIN, 'agent', '--capture', capture, '--interval', '300ms', '--spool', spool],
        { env: agentEnv, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      c.stderr.resume();
      children.push(c);
      return c;
    };
    const captures = () => (existsSync(ledger) ? readFileSync(ledger, 'utf8').split('\n').length - 1 : 0);

    let agent = startAgent();
    await until('two uploads', async () => (await listAll()).length >= 2);

    server.kill('SIGTERM');
    assert.equal(await exited(server), 0);
    await until('captures pile up while the server is down', () => queued(spool) >= 3);
    agent.kill('SIGTERM');
    assert.equal(await exited(agent), 0);
    agent = startAgent();
    await until('more captures after the agent restarted', () => queued(spool) >= 6);
    const backlog = queued(spool);

    server = serve();
    await ready();
    // The agent keeps capturing every 300 ms while it drains, so on a loaded machine the spool may
    // never be empty at one instant: wait for the backlog to have arrived (the two uploads before
    // the stop plus everything queued meanwhile); the `--once` run below empties the rest.
    await until('the backlog drains', async () => (await listAll()).length >= backlog + 2, 120_000);
    agent.kill('SIGTERM');
    assert.equal(await exited(agent), 0);
    // Anything captured just before the stop: upload it (no capture, no watch).
    const drain = await run(process.execPath, [BIN, 'agent', '--once', '--spool', spool], { env: agentEnv });
    void drain;
    assert.equal(queued(spool), 0);

    const items = await listAll();
    const n = captures();
    assert.ok(backlog >= 6 && n >= 8, `backlog ${backlog}, captures ${n}`);
    assert.equal(items.length, n, 'every capture arrived, none twice');
    assert.equal(new Set(items.map((i) => i.messageId)).size, n);
    assert.equal(new Set(items.map((i) => i.sha256)).size, n);
    const byUpload = [...items].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    for (let i = 1; i < byUpload.length; i++) {
      assert.ok(byUpload[i]!.capturedAt >= byUpload[i - 1]!.capturedAt, 'uploaded oldest first');
    }
    server.kill('SIGTERM');
    await exited(server);
  });

  test('without MEDIA_ENABLED=true the agent does nothing and says so', async () => {
    const res = await run(process.execPath, [BIN, 'agent', '--capture', 'false'], {
      env: { ...process.env, MEDIA_ENABLED: '' },
    });
    assert.match(res.stderr, /MEDIA_ENABLED is not true/);
  });
});
