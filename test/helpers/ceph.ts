/**
 * A real S3 server for tests: a throw-away Ceph RADOS Gateway started with
 * `../shared/s3/start-ceph-rgw.sh` (one per test file), stopped with `stop-ceph-rgw.sh`.
 */
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freePort, tempDir } from './server.ts';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
export const S3_SCRIPTS = path.resolve(here, '../../../shared/s3');
export const ROOT = path.resolve(here, '../..');

export interface Ceph {
  /** S3_ENDPOINT, S3_REGION, S3_FORCE_PATH_STYLE and the AWS_* credentials (for spawned commands). */
  env: Record<string, string>;
  /** Server environment for STORAGE_BACKEND=s3 on `bucket`. */
  serverEnv(bucket: string, extra?: Record<string, string>): Record<string, string>;
  stop(): Promise<void>;
}

export async function startCeph(): Promise<Ceph> {
  const dir = await tempDir('mediary-s3test-ceph-');
  const port = await freePort();
  let monPort = await freePort();
  while (monPort === port) monPort = await freePort();
  const { stdout } = await run('bash', [path.join(S3_SCRIPTS, 'start-ceph-rgw.sh'), dir, String(port)], {
    env: { ...process.env, MON_PORT: String(monPort) },
  });
  const vars = Object.fromEntries(
    stdout
      .split('\n')
      .map((l) => /^([A-Z0-9_]+)=(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
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
      await run('bash', [path.join(S3_SCRIPTS, 'stop-ceph-rgw.sh'), dir, '--wipe']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
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
