/**
 * Starting and stopping the service as supervisors do: `npm start` stopped with SIGTERM leaves
 * nothing running, and a start that fails (a port in use) stops what it started and says which
 * setting to change, without a stack trace.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer, type Server as NetServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { tempDir, testEnv } from '../helpers/server.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin', 'mediary.mjs');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** Every live process below `root`, from /proc. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length > 0) {
    for (const c of children.get(todo.pop()!) ?? []) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}

async function gone(pids: number[], deadlineMs = 60_000): Promise<number[]> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const left = pids.filter(alive);
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(100);
  }
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

async function occupy(port: number): Promise<NetServer> {
  const srv = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', resolve);
  });
  return srv;
}

/** The postmaster recorded in the data dir, if it still runs. */
function livePostmaster(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
    return pid > 0 && alive(pid) ? pid : undefined;
  } catch {
    return undefined;
  }
}

function run(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): { child: ChildProcess; output: () => string; exited: Promise<number | string> } {
  // Its own process group, so the clean-up can reach whatever a failed test leaves behind.
  const child = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  groups.push(child.pid!);
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code ?? -1)),
  );
  return { child, output: () => out, exited };
}

const groups: number[] = [];
const dirs: string[] = [];
after(async () => {
  for (const g of groups) {
    try {
      process.kill(-g, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('starting and stopping the service', () => {
  // One data directory for the file: the embedded database is initialised once.
  let dataDir: string;
  let env: Record<string, string>;

  test('an embedded Postgres port in use fails the start naming EMBEDDED_PG_PORT, without a stack trace', async () => {
    dataDir = await tempDir('mediary-lifecycle-');
    dirs.push(dataDir);
    env = await testEnv(dataDir, { LOG_LEVEL: 'warn' });
    const blocker = await occupy(Number(env.EMBEDDED_PG_PORT));
    try {
      const p = run(process.execPath, [BIN, 'serve'], env);
      const code = await p.exited;
      assert.notEqual(code, 0, p.output());
      assert.match(p.output(), new RegExp(`EMBEDDED_PG_PORT ${env.EMBEDDED_PG_PORT} is in use`));
      assert.doesNotMatch(p.output(), /\n\s+at /, 'no stack trace');
      assert.equal(livePostmaster(dataDir), undefined, 'no Postgres left running');
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  test('an unreachable DATABASE_URL fails the start naming it and why, without a stack trace', async () => {
    const closed = await occupy(0);
    const port = (closed.address() as { port: number }).port;
    await new Promise((resolve) => closed.close(resolve)); // a port nothing listens on
    const dir = await tempDir('mediary-lifecycle-db-');
    dirs.push(dir);
    const p = run(process.execPath, [BIN, 'serve'], {
      ...(await testEnv(dir, { LOG_LEVEL: 'warn' })),
      DATABASE_URL: `postgres://u:p@127.0.0.1:${port}/mediary`,
    });
    assert.notEqual(await p.exited, 0, p.output());
    assert.match(
      p.output(),
      new RegExp(`DATABASE_URL \\(127\\.0\\.0\\.1:${port}/mediary\\): nothing listens there`),
    );
    assert.doesNotMatch(p.output(), /\n\s+at /, 'no stack trace');
  });

  test('an HTTP port in use fails the start and stops the embedded Postgres it started', async () => {
    const blocker = await occupy(Number(env.PORT));
    try {
      const p = run(process.execPath, [BIN, 'serve'], env);
      const code = await p.exited;
      assert.notEqual(code, 0, p.output());
      assert.match(p.output(), new RegExp(`PORT ${env.PORT} on 127.0.0.1 is in use`));
      assert.doesNotMatch(p.output(), /\n\s+at /, 'no stack trace');
      assert.deepEqual(await gone(descendants(p.child.pid!)), []);
      assert.equal(livePostmaster(dataDir), undefined, 'no Postgres left running');
      assert.ok(await portFree(Number(env.EMBEDDED_PG_PORT)), 'the Postgres port is free again');
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  test('SIGTERM to `npm start` stops the server and its Postgres, and frees the port', async () => {
    const npm = run('npm', ['start'], env);
    const deadline = Date.now() + 90_000;
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${env.PORT}/readyz`).catch(() => undefined);
      if (res?.status === 200) break;
      assert.ok(Date.now() < deadline, `npm start was not ready in time:\n${npm.output().slice(-2000)}`);
      assert.equal(npm.child.exitCode, null, `npm start exited:\n${npm.output().slice(-2000)}`);
      await sleep(100);
    }
    const started = descendants(npm.child.pid!);
    assert.ok(
      started.some((pid) => cmdline(pid).includes('mediary.mjs serve')),
      'the server runs below npm',
    );
    const postmaster = livePostmaster(dataDir);
    assert.ok(postmaster !== undefined && started.includes(postmaster), 'and its Postgres too');

    npm.child.kill('SIGTERM');
    await npm.exited;
    assert.deepEqual(
      (await gone(started)).map((pid) => `${pid} ${cmdline(pid)}`),
      [],
      'nothing npm started is left running',
    );
    assert.ok(await portFree(Number(env.PORT)), 'the HTTP port is free');
    assert.ok(await portFree(Number(env.EMBEDDED_PG_PORT)), 'the Postgres port is free');
  });
});
