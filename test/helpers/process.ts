/**
 * A real `mediary serve` in a child process (the fault suite kills it; the benchmarks measure it),
 * plus direct database access to the embedded Postgres it runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createDevice } from '../../src/auth/principals.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BIN = path.join(ROOT, 'bin', 'mediary.mjs');

export interface ServiceProcess {
  child: ChildProcess;
  pid: number;
  base: string;
  api(pathname: string): string;
  /** Resolves with the exit code or signal once the process has gone. */
  exited: Promise<string>;
  kill(signal?: NodeJS.Signals): Promise<string>;
}

/**
 * Spawns `node bin/mediary.mjs serve` with `env` and waits until /readyz answers.
 * stdout is handed to `onStdout` when given (benchmarks parse Fastify's request logs), else
 * appended with stderr to `<DATA_DIR>/service.log`.
 */
export async function spawnService(
  env: Record<string, string>,
  opts: {
    onStdout?: (line: string) => void;
    readyTimeoutMs?: number;
    nodeArgs?: string[];
    /** Another checkout's `bin/mediary.mjs` (a bench comparing two versions of the service). */
    bin?: string;
  } = {},
): Promise<ServiceProcess> {
  const dataDir = env.DATA_DIR!;
  await mkdir(dataDir, { recursive: true });
  const log = createWriteStream(path.join(dataDir, 'service.log'), { flags: 'a' });
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), opts.bin ?? BIN, 'serve'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (opts.onStdout) {
    let rest = '';
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) opts.onStdout!(line);
    });
  } else child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  const exited = new Promise<string>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? String(code))),
  );
  const base = env.PUBLIC_URL ?? `http://127.0.0.1:${env.PORT}`;
  const svc: ServiceProcess = {
    child,
    pid: child.pid!,
    base,
    api: (p) => `${base}/api/v1${p}`,
    exited,
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  let gone: string | undefined;
  void exited.then((how) => (gone = how));
  for (;;) {
    if (gone !== undefined) {
      throw new Error(`mediary serve exited (${gone}) before it was ready; see ${dataDir}/service.log`);
    }
    if (Date.now() > deadline) {
      await svc.kill();
      throw new Error(`mediary serve was not ready in time; see ${dataDir}/service.log`);
    }
    try {
      const res = await fetch(`${base}/readyz`);
      if (res.status === 200) return svc;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
}

/** The URL of the embedded Postgres a service runs in `dataDir` (password file + port). */
export function embeddedUrl(dataDir: string, port: number | string): string {
  const password = readFileSync(path.join(dataDir, 'postgres.password'), 'utf8').trim();
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/mediary`;
}

export function poolFor(url: string, max = 4): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on('error', () => undefined); // the database is restarted on purpose in the fault suite
  return pool;
}

/** Creates `n` devices directly in the database; returns their ids and keys. */
export async function makeDevices(
  db: pg.Pool,
  n: number,
  prefix = 'dev',
): Promise<{ id: string; key: string; auth: Record<string, string> }[]> {
  const out = [];
  for (let i = 0; i < n; i++) {
    const { device, apiKey } = await createDevice(db, { name: `${prefix}-${i}` });
    out.push({ id: device.id, key: apiKey, auth: { authorization: `Bearer ${apiKey}` } });
  }
  return out;
}

export interface FaultRow {
  scenario: string;
  trials: number;
  survived: number;
  notes?: string;
}

/** Rows for the fault suite's closing table (scripts/test.mjs --faults prints them). */
export async function recordFaultResults(name: string, rows: FaultRow[]): Promise<void> {
  const dir = process.env.FAULT_RESULTS_DIR;
  for (const r of rows) console.log(`[fault] ${r.scenario}: ${r.survived}/${r.trials} ${r.notes ?? ''}`);
  if (!dir) return;
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, `${name}.json`), JSON.stringify(rows, null, 2));
}

/** Percentile of an ascending-sorted array (nearest rank). */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Stops a postmaster a SIGKILLed service left running on `<dataDir>/postgres` (test clean-up). */
export async function stopOrphanPostgres(dataDir: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 'SIGINT');
  } catch {
    return;
  }
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(50);
  }
}

/** Bytes `file-type` sniffs as video/mp4 (an ISO BMFF `ftyp` box), padded with random data. */
export function fakeMp4(size: number): Buffer {
  const head = Buffer.concat([
    Buffer.from([0, 0, 0, 0x18]),
    Buffer.from('ftypisom'),
    Buffer.from([0, 0, 2, 0]),
    Buffer.from('isommp42'),
  ]);
  return Buffer.concat([head, randomBytes(Math.max(0, size - head.length))]);
}
