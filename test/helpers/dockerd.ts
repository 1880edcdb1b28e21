/**
 * A Docker engine of the test's own (Debian's `docker.io`), started as root with everything in a
 * temporary directory: data root, exec root, socket, pid file, client config. It touches neither
 * the machine's network nor its firewall (`--iptables=false --ip6tables=false --bridge=none`), so
 * containers run with `--network host`. `stop()` stops the daemon and unmounts whatever it left
 * mounted under its directory before removing it.
 *
 * The base image (Debian bookworm from debootstrap + Node 20 from npm, deploy/docker/base-image.sh)
 * is cached as a tarball under MEDIARY_TEST_CACHE (default ~/.cache/mediary-test), keyed by the
 * script's hash, so a machine pays for debootstrap once.
 *
 * One daemon per run: scripts/test.mjs starts it (test/helpers/run-services.ts) when a selected
 * file calls `useDockerd(`, with its data root in the run's temporary directory, and stops it
 * when the run ends. Every file attaches to it, so the base is imported and each image built once
 * per run (the fault suite runs one file at a time); the builds of later files hit the cache. A
 * file run on its own (`node --test`) starts a daemon of its own instead.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BASE_SCRIPT = path.join(ROOT, 'deploy/docker/base-image.sh');
export const BASE_IMAGE = 'mediary-base:bookworm-node20';
/** The run's daemon directory (set by scripts/test.mjs for the test processes). */
export const RUN_DOCKERD_ENV = 'MEDIARY_RUN_DOCKERD';

export interface Dockerd {
  dir: string;
  /** Runs the docker client against this daemon; resolves with stdout, rejects with stderr's tail. */
  docker(args: string[], opts?: { timeoutMs?: number; input?: string }): Promise<string>;
  env: Record<string, string>;
  stop(): Promise<void>;
}

export function run(
  file: string,
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number; cwd?: string; input?: string } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        env: { ...process.env, ...opts.env },
        timeout: opts.timeoutMs ?? 600_000,
        maxBuffer: 256 * 1024 * 1024,
        cwd: opts.cwd ?? ROOT,
      },
      (err, stdout, stderr) => {
        if (err)
          reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stderr.slice(-4000)}`));
        else resolve(stdout);
      },
    );
    // A child that never reads its input may exit first: EPIPE is then no error of ours.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input);
  });
}

/** Mount points at or under `dir` (deepest first), from /proc/self/mountinfo. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}

function clientEnv(dir: string): Record<string, string> {
  return {
    DOCKER_HOST: `unix://${path.join(dir, 'docker.sock')}`,
    DOCKER_CONFIG: path.join(dir, 'client'),
    // The classic builder: BuildKit would need the buildx plugin and pull its frontend.
    DOCKER_BUILDKIT: '0',
  };
}

function clientFor(env: Record<string, string>): Dockerd['docker'] {
  return (args, opts = {}) =>
    run('docker', args, { env, ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}) });
}

/**
 * The run's daemon if scripts/test.mjs started one (its `stop()` leaves it running: the run stops
 * it), else a daemon of this process's own.
 */
export async function useDockerd(): Promise<Dockerd> {
  const dir = process.env[RUN_DOCKERD_ENV];
  if (!dir) return startDockerd();
  const env = clientEnv(dir);
  const docker = clientFor(env);
  await docker(['version', '--format', '{{.Server.Version}}']);
  return { dir, docker, env, stop: () => Promise.resolve() };
}

/** Starts a daemon with everything under `dir` (default: a new temporary directory). */
export async function startDockerd(at?: string): Promise<Dockerd> {
  const dir = at ?? (await mkdtemp(path.join(os.tmpdir(), 'mediary-dockerd-')));
  await mkdir(dir, { recursive: true });
  const sock = path.join(dir, 'docker.sock');
  await mkdir(path.join(dir, 'client'));
  await writeFile(path.join(dir, 'daemon.json'), '{}');
  // An empty client config: no credential helpers of the machine's user are consulted.
  await writeFile(path.join(dir, 'client', 'config.json'), '{}');
  const daemon: ChildProcess = spawn(
    'dockerd',
    [
      ...['--iptables=false', '--ip6tables=false', '--bridge=none', '--ip-masq=false'],
      ...['--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec')],
      ...['--pidfile', path.join(dir, 'dockerd.pid'), '--host', `unix://${sock}`],
      ...['--config-file', path.join(dir, 'daemon.json'), '--log-level', 'warn'],
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  daemon.stderr!.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-8000)));
  const exited = new Promise<void>((resolve) => daemon.once('exit', () => resolve()));
  const env = clientEnv(dir);
  const docker = clientFor(env);
  const stop = async () => {
    if (daemon.exitCode === null && daemon.signalCode === null) {
      daemon.kill('SIGTERM');
      await Promise.race([exited, sleep(30_000)]);
      if (daemon.exitCode === null && daemon.signalCode === null) {
        daemon.kill('SIGKILL');
        await exited;
      }
    }
    for (const m of mountsUnder(dir)) {
      await run('umount', ['-l', m]).catch(() => undefined);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (daemon.exitCode !== null) {
      await stop();
      throw new Error(`dockerd exited before it was ready:\n${log}`);
    }
    if (
      await docker(['version', '--format', '{{.Server.Version}}']).then(
        () => true,
        () => false,
      )
    )
      break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`dockerd was not ready within 60 s:\n${log}`);
    }
    await sleep(250);
  }
  return { dir, docker, env, stop };
}

async function hasImage(d: Dockerd, tag: string): Promise<boolean> {
  return d.docker(['image', 'inspect', '--format', '{{.Id}}', tag]).then(
    () => true,
    () => false,
  );
}

/** Imports the cached base image (once per daemon), making (and caching) its tarball first if needed. */
export async function loadBaseImage(d: Dockerd): Promise<void> {
  if (await hasImage(d, BASE_IMAGE)) return;
  const cache = process.env.MEDIARY_TEST_CACHE ?? path.join(os.homedir(), '.cache', 'mediary-test');
  await mkdir(cache, { recursive: true });
  const hash = createHash('sha256').update(readFileSync(BASE_SCRIPT)).digest('hex').slice(0, 12);
  const tar = path.join(cache, `base-bookworm-node20-${hash}.tar`);
  if (!existsSync(tar)) await run('sh', [BASE_SCRIPT, tar], { timeoutMs: 1_200_000 });
  await d.docker(
    [
      'import',
      '--change',
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      '--change',
      // Node (and npm) trust the system's bundle, which holds the machine's extra CAs if any.
      'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt',
      '--change',
      'CMD ["node"]',
      tar,
      BASE_IMAGE,
    ],
    { timeoutMs: 600_000 },
  );
}

/** Size in bytes of an image, as `docker image inspect` reports it. */
export async function imageSize(d: Dockerd, tag: string): Promise<number> {
  return Number((await d.docker(['image', 'inspect', '--format', '{{.Size}}', tag])).trim());
}

/**
 * `docker build` on the base image with the host's network (the daemon has no bridge):
 * `file` (a Dockerfile, relative to the repository) in `context` (relative, default the root).
 */
export async function buildImage(
  d: Dockerd,
  tag: string,
  opts: { file?: string; context?: string } = {},
): Promise<void> {
  await loadBaseImage(d);
  await d.docker(
    [
      ...['build', '--network', 'host', '--build-arg', `BASE=${BASE_IMAGE}`, '-t', tag],
      ...(opts.file ? ['-f', path.join(ROOT, opts.file)] : []),
      path.join(ROOT, opts.context ?? '.'),
    ],
    { timeoutMs: 1_800_000 },
  );
}
