/**
 * What scripts/test.mjs starts once per run and passes to the test processes through the
 * environment: a Ceph RADOS Gateway (CEPH_DIR_ENV), a PostgreSQL with a migrated template
 * database (TEMPLATE_ENV) and a Docker engine (RUN_DOCKERD_ENV, test/helpers/dockerd.ts). They
 * start at the same time; stop() may be called at any moment (Ctrl-C
 * during the start): it waits for the start to settle and stops whatever has started.
 */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { CEPH_DIR_ENV, launchCeph, stopCeph } from './ceph.ts';
import { RUN_DOCKERD_ENV, startDockerd, type Dockerd } from './dockerd.ts';
import { tempDir } from './server.ts';
import { startTemplatePostgres, type TemplatePostgres } from './test-postgres.ts';

export interface RunServices {
  /** Resolves with the test processes' environment once both run; rejects (after stopping) if one fails. */
  ready: Promise<Record<string, string>>;
  stop(): Promise<void>;
}

interface Wanted {
  ceph: boolean;
  postgres: boolean;
  dockerd?: boolean;
}

export function startRunServices(want: Wanted): RunServices {
  let stopped: Promise<void> | undefined;
  const started = start(want);
  const stop = () => (stopped ??= started.then((s) => s.stop()));
  return {
    ready: started.then(async (s) => {
      if (s.failure === undefined) return s.env;
      await stop();
      throw new Error('could not start the test run’s Ceph, PostgreSQL or Docker engine', {
        cause: s.failure,
      });
    }),
    stop,
  };
}

async function start(want: Wanted) {
  const dir = await tempDir('mediary-testrun-');
  const cephDir = path.join(dir, 'ceph');
  let cephStarted = false;
  let postgres: TemplatePostgres | undefined;
  let dockerd: Dockerd | undefined;
  const env: Record<string, string> = {};
  const starting = Promise.allSettled([
    want.ceph
      ? (async () => {
          cephStarted = true; // the script records each daemon as it starts: stop covers a partial start
          await launchCeph(cephDir);
          env[CEPH_DIR_ENV] = cephDir;
        })()
      : undefined,
    want.postgres
      ? (async () => {
          postgres = await startTemplatePostgres(dir);
          Object.assign(env, postgres.env);
        })()
      : undefined,
    want.dockerd
      ? (async () => {
          dockerd = await startDockerd(path.join(dir, 'dockerd'));
          env[RUN_DOCKERD_ENV] = dockerd.dir;
        })()
      : undefined,
  ]);
  const failed = (await starting).find((r) => r.status === 'rejected');
  return {
    env,
    failure: failed?.status === 'rejected' ? (failed.reason as unknown) : undefined,
    async stop() {
      await Promise.all([
        cephStarted ? stopCeph(cephDir).catch(() => undefined) : undefined,
        postgres?.stop(),
        dockerd?.stop(),
      ]);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
