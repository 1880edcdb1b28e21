/**
 * Shared pieces of the benchmarks: statistics, result files, scratch space, a streaming upload
 * client, and the service / sink / tus processes under test.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { embeddedUrl, makeDevices, poolFor, spawnService } from '../../test/helpers/process.ts';
import { testEnv } from '../../test/helpers/server.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const GiB = 1024 ** 3;
export const MiB = 1024 ** 2;

export interface Stat {
  median: number;
  min: number;
  max: number;
  /** (max - min) / median, in percent. */
  spreadPct: number;
  samples: number[];
}

export function stat(samples: number[]): Stat {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return {
    median: mid,
    min: s[0]!,
    max: s.at(-1)!,
    spreadPct: mid === 0 ? 0 : ((s.at(-1)! - s[0]!) / mid) * 100,
    samples,
  };
}

export function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** One line of the final table: a figure, its same-run baseline, their ratio and the goal. */
export interface BenchRow {
  bench: string;
  figure: string;
  unit: string;
  value: Stat;
  baselineName: string;
  baseline?: Stat | undefined;
  /** value.median / baseline.median (or the inverse, see `ratioMeaning`). */
  ratio?: number | undefined;
  ratioMeaning?: string | undefined;
  goal: string;
  met: boolean | null;
}

export interface BenchResult {
  name: string;
  rows: BenchRow[];
  notes: string[];
}

/** Each bench script ends with this; bench/run.ts collects the files. */
export async function report(result: BenchResult): Promise<void> {
  const out = process.env.BENCH_OUT;
  if (out) await writeFile(out, JSON.stringify(result, null, 2));
  else console.log(JSON.stringify(result, null, 2));
}

export const reps = (fallback: number) => Number(process.env.BENCH_REPS ?? fallback);

export async function scratch(prefix: string): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(path.join(process.env.BENCH_TMP ?? os.tmpdir(), `mediary-bench-${prefix}-`));
  await chmod(dir, 0o711); // the embedded Postgres runs as another user and must traverse it
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Flushes dirty pages so one contender's unsynced writes do not slow the next one's fsync. */
export function syncDisks(): void {
  spawnSync('sync');
}

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

/**
 * Streams `total` bytes (the `pattern` buffer repeated) as one request body and resolves when the
 * response has fully arrived. Returns the seconds taken and the response.
 */
export function streamUpload(
  url: string,
  opts: { method: string; headers: Record<string, string>; pattern: Buffer; total: number },
): Promise<{ seconds: number; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request(url, {
      method: opts.method,
      headers: { ...opts.headers, 'content-length': String(opts.total) },
      agent: false,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () =>
        resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, status: res.statusCode!, body }),
      );
    });
    let sent = 0;
    const pump = () => {
      while (sent < opts.total) {
        const n = Math.min(opts.pattern.length, opts.total - sent);
        sent += n;
        if (!req.write(n === opts.pattern.length ? opts.pattern : opts.pattern.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

export interface Child {
  child: ChildProcess;
  pid: number;
  stop(): Promise<void>;
}

/** Runs one of bench/lib's servers (`sink.ts`, `tus.ts`) and waits for its "ready" line. */
export async function startHelper(script: string, args: string[]): Promise<Child> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'bench', 'lib', script), ...args],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      if (buf.includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
  return {
    child,
    pid: child.pid!,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** Resident set size and its high-water mark of a process, from /proc (bytes). */
export function memoryOf(pid: number): { rss: number; hwm: number } {
  const text = spawnSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' }).stdout;
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** Samples VmRSS of `pid` every `everyMs` until stopped; returns the peak seen. */
export function sampleRss(pid: number, everyMs = 20) {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    const { readFile } = await import('node:fs/promises');
    while (running) {
      try {
        const text = await readFile(`/proc/${pid}/status`, 'utf8');
        const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(text)?.[1] ?? 0) * 1024;
        if (rss > peak) peak = rss;
      } catch {
        return;
      }
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

export const fmt = (n: number, digits = 1) =>
  Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 10 ? n.toFixed(digits) : n.toFixed(digits + 1);

/**
 * `mediary serve` in `dir` with one device, for uploads through one `PUT /media/{id}/upload`: the
 * multipart protocol (the default above 16 MiB) is kept out of these measurements, and so is the
 * worker (a completed upload's processing job would run into the next contender's time).
 */
export async function startSinglePutService(
  dir: string,
  opts: {
    nodeArgs?: string[];
    env?: Record<string, string>;
    onStdout?: (line: string) => void;
    /** Another checkout's `bin/mediary.mjs` (bench/curl-gc.ts compares two versions). */
    bin?: string;
  } = {},
) {
  const env = await testEnv(dir, {
    LOG_LEVEL: 'warn',
    MULTIPART_THRESHOLD_BYTES: String(5 * GiB),
    WORKER_ENABLED: 'false',
    ...opts.env,
  });
  const { env: _env, ...spawnOpts } = opts;
  const svc = await spawnService(env, spawnOpts);
  const db = poolFor(embeddedUrl(env.DATA_DIR!, env.EMBEDDED_PG_PORT!));
  const [dev] = await makeDevices(db, 1, 'bench');
  await db.end();
  return { svc, dev: dev! };
}
