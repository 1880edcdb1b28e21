/** `mediary agent`: the camera device agent (see docs/RUNBOOKS/CAMERA.md). */
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Agent } from '../agent/agent.ts';
import { Spool } from '../agent/spool.ts';
import { createLogger } from '../log.ts';
import {
  clientFrom,
  connectionOptions,
  parseInterval,
  parseSize,
  positiveInt,
  UsageError,
} from './common.ts';

export function defaultSpoolDir(env = process.env): string {
  const base = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'mediary', 'spool');
}

export async function agentCommand(args: string[], env = process.env): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...connectionOptions,
      camera: { type: 'string' },
      capture: { type: 'string' },
      interval: { type: 'string' },
      ext: { type: 'string' },
      watch: { type: 'string' },
      spool: { type: 'string' },
      reason: { type: 'string' },
      'max-spool-bytes': { type: 'string' },
      'max-spool-files': { type: 'string' },
      concurrency: { type: 'string' },
      once: { type: 'boolean', default: false },
    },
  });
  if (!/^(1|true|yes|on)$/i.test(env.MEDIA_ENABLED ?? '')) {
    console.error(
      'mediary agent: MEDIA_ENABLED is not true; nothing to do (set MEDIA_ENABLED=true to capture and upload).',
    );
    return 0;
  }
  if (values.capture && values.watch) throw new UsageError('agent takes --capture or --watch, not both');
  const client = clientFrom(values, env);
  const logger = createLogger(env.LOG_LEVEL ?? 'info', 2).child({ component: 'agent' });
  const cameraId = values.camera ?? env.MEDIARY_CAMERA;
  if (cameraId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(cameraId)) {
    throw new UsageError(
      '--camera must be letters, digits, _ . - (up to 64), starting with a letter or digit',
    );
  }
  const intervalMs = parseInterval(values.interval ?? '10s');
  const ext = (values.ext ?? 'jpg').replace(/^\./, '');
  const spool = new Spool(
    path.resolve(values.spool ?? env.MEDIARY_SPOOL ?? defaultSpoolDir(env)),
    {
      maxBytes: parseSize(
        values['max-spool-bytes'] ?? env.MEDIARY_SPOOL_MAX_BYTES ?? '1GiB',
        '--max-spool-bytes',
      ),
      maxFiles: positiveInt(
        values['max-spool-files'] ?? env.MEDIARY_SPOOL_MAX_FILES,
        '--max-spool-files',
        10_000,
      ),
    },
    logger,
  );
  const agent = new Agent({
    client,
    spool,
    logger,
    cameraId,
    reason: values.reason,
    capture: values.capture
      ? { command: values.capture, intervalMs, ext, timeoutMs: Math.max(60_000, intervalMs) }
      : undefined,
    watch: values.watch ? { dir: path.resolve(values.watch), pollMs: 1000, settleMs: 1000 } : undefined,
    concurrency: positiveInt(values.concurrency, '--concurrency', 2),
    maxBackoffMs: 30_000,
  });

  if (values.once) {
    await agent.run({ once: true });
    return 0;
  }
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'agent stopping');
    void agent.shutdown().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  await agent.run();
  return 0;
}
