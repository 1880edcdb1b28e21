/**
 * A real S3 server for tests: a throw-away Ceph RADOS Gateway started with the project's own
 * `scripts/ceph-rgw.sh`. Under scripts/test.mjs one Ceph serves the whole run (CEPH_DIR_ENV names
 * its directory) and every file uses buckets of its own; a test file run on its own starts (and
 * stops) a Ceph of its own.
 */
import { execFile, spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { S3ObjectStore } from '../../src/storage/s3.ts';
import { freePort, tempDir } from './server.ts';
import { countSetup } from './test-postgres.ts';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../..');
export const CEPH_SCRIPT = path.join(ROOT, 'scripts', 'ceph-rgw.sh');
/** Set by scripts/test.mjs: the directory of the run's Ceph (scripts/ceph-rgw.sh start DIR). */
export const CEPH_DIR_ENV = 'MEDIARY_TEST_CEPH_DIR';

export interface Ceph {
  /** S3_ENDPOINT, S3_REGION, S3_FORCE_PATH_STYLE and the AWS_* credentials (for spawned commands). */
  env: Record<string, string>;
  /** Server environment for STORAGE_BACKEND=s3 on `bucket`. */
  serverEnv(bucket: string, extra?: Record<string, string>): Record<string, string>;
  /**
   * The S3 gateway alone (the radosgw process), for outage tests. The monitor and the memstore OSD
   * keep running, so the objects, the bucket and the user survive a gateway restart (restarting
   * the whole cluster would start from an empty store). Only on a Ceph of the file's own: the
   * runner shares no Ceph with the fault suite (`--faults`), whose store.fault.ts uses these.
   */
  gateway: {
    /** SIGSTOP: the port still accepts connections, nothing answers (a hung gateway). */
    pause(): void;
    /** SIGKILL: connections refused (also ends a paused gateway). */
    kill(): Promise<void>;
    /** Starts radosgw again on the same cluster and port; resolves once it answers HTTP. */
    start(): Promise<void>;
  };
  /** Stops a Ceph this file started; on the run's shared Ceph, nothing (the runner stops it). */
  stop(): Promise<void>;
}

/** Starts a Ceph in `dir` (scripts/ceph-rgw.sh start); resolves with its KEY=VALUE lines. */
export async function launchCeph(
  dir: string,
  extraEnv: Record<string, string> = {},
): Promise<Record<string, string>> {
  const port = await freePort();
  let monPort = await freePort();
  while (monPort === port) monPort = await freePort();
  const { stdout } = await run('bash', [CEPH_SCRIPT, 'start', dir, String(port)], {
    env: { ...process.env, ...extraEnv, MON_PORT: String(monPort) },
  });
  return parseEnv(stdout);
}

/** Stops the Ceph in `dir` and empties it (scripts/ceph-rgw.sh stop). */
export async function stopCeph(dir: string): Promise<void> {
  await run('bash', [CEPH_SCRIPT, 'stop', dir]);
}

function parseEnv(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split('\n')
      .map((l) => /^([A-Z0-9_]+)=(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
}

export async function startCeph(): Promise<Ceph> {
  const shared = process.env[CEPH_DIR_ENV];
  countSetup('ceph');
  if (shared) return cephHandle(shared, parseEnv(await readFile(path.join(shared, 'env'), 'utf8')), false);
  const dir = await tempDir('mediary-s3test-ceph-');
  try {
    return cephHandle(dir, await launchCeph(dir), true);
  } catch (err) {
    await stopCeph(dir).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

function cephHandle(dir: string, vars: Record<string, string>, owned: boolean): Ceph {
  const env = {
    S3_ENDPOINT: vars.S3_ENDPOINT!,
    S3_REGION: vars.S3_REGION!,
    S3_FORCE_PATH_STYLE: 'true',
    AWS_ACCESS_KEY_ID: vars.S3_ACCESS_KEY_ID!,
    AWS_SECRET_ACCESS_KEY: vars.S3_SECRET_ACCESS_KEY!,
  };
  // The in-process server's SDK reads credentials through the default chain: the environment.
  process.env.AWS_ACCESS_KEY_ID = env.AWS_ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = env.AWS_SECRET_ACCESS_KEY;
  return {
    env,
    gateway: owned ? gatewayControl(dir, env.S3_ENDPOINT) : sharedGateway(),
    serverEnv: (bucket, extra = {}) => ({
      STORAGE_BACKEND: 's3',
      S3_BUCKET: bucket,
      S3_ENDPOINT: env.S3_ENDPOINT,
      S3_REGION: env.S3_REGION,
      S3_FORCE_PATH_STYLE: 'true',
      S3_ENFORCES_CHECKSUM: 'false',
      ...extra,
    }),
    async stop() {
      if (!owned) return;
      await stopCeph(dir).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The run's shared gateway serves files running at the same time: no outages there. */
function sharedGateway(): Ceph['gateway'] {
  const refuse = (): never => {
    throw new Error(`gateway outages need a Ceph of the file's own (run the file without ${CEPH_DIR_ENV})`);
  };
  return { pause: refuse, kill: () => Promise.resolve(refuse()), start: () => Promise.resolve(refuse()) };
}

/** The radosgw pid scripts/ceph-rgw.sh recorded in DIR/pids, if it still runs with our config. */
function gatewayPid(dir: string): number | undefined {
  let lines: string[];
  try {
    lines = readFileSync(path.join(dir, 'pids'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  for (const line of lines) {
    const [pid, name] = line.trim().split(/\s+/);
    if (name !== 'radosgw' || !pid) continue;
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (comm === 'radosgw' && cmdline.includes(path.join(dir, 'ceph.conf'))) return Number(pid);
    } catch {
      // gone
    }
  }
  return undefined;
}

function gatewayControl(dir: string, endpoint: string): Ceph['gateway'] {
  const conf = path.join(dir, 'ceph.conf');
  return {
    pause() {
      const pid = gatewayPid(dir);
      if (pid === undefined) throw new Error('radosgw is not running');
      process.kill(pid, 'SIGSTOP');
    },
    async kill() {
      const pid = gatewayPid(dir);
      if (pid === undefined) return;
      process.kill(pid, 'SIGKILL');
      while (gatewayPid(dir) === pid) await sleep(20);
    },
    async start() {
      if (gatewayPid(dir) !== undefined) throw new Error('radosgw is already running');
      // The same command line scripts/ceph-rgw.sh uses; its pid replaces the old one in DIR/pids so
      // `ceph-rgw.sh stop` still stops exactly what runs.
      const out = openSync(path.join(dir, 'log', 'rgw.out'), 'a');
      const child = spawn('radosgw', ['-c', conf, '-f', '-n', 'client.rgw.a'], {
        detached: true,
        stdio: ['ignore', out, out],
      });
      child.unref();
      const pids = (await readFile(path.join(dir, 'pids'), 'utf8'))
        .split('\n')
        .filter((l) => l.trim() !== '' && !/\sradosgw$/.test(l.trim()));
      await writeFile(path.join(dir, 'pids'), [...pids, `${child.pid} radosgw`, ''].join('\n'));
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          await fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2000) });
          return;
        } catch {
          if (Date.now() > deadline) throw new Error('radosgw did not answer within 60 s of a restart');
          if (child.exitCode !== null) throw new Error(`radosgw exited (${child.exitCode}) on restart`);
          await sleep(100);
        }
      }
    },
  };
}

/** Runs `mediary ARGS…` with `env`; resolves with the exit code and output (never rejects). */
export async function mediary(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [path.join(ROOT, 'bin/mediary.mjs'), ...args], {
      env: { ...process.env, ...env },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/**
 * An S3 store on `ceph`'s gateway and `bucket`, as the service builds one (path-style, no checksum
 * enforcement), for tests that read or write the bucket beside the service. Parts of `partBytes`
 * (5 MiB unless given; also the single-PUT limit).
 */
export function bucketStore(ceph: Ceph, bucket: string, partBytes = 5 * 1024 * 1024): S3ObjectStore {
  return new S3ObjectStore({
    bucket,
    region: ceph.env.S3_REGION!,
    endpoint: ceph.env.S3_ENDPOINT,
    forcePathStyle: true,
    enforcesChecksum: false,
    singlePutMaxBytes: partBytes,
    partSize: partBytes,
  });
}
