/**
 * Load diagnostics (DIAGNOSTICS_INTERVAL_SECONDS, off by default): every interval one log line,
 * `{"diagnostics": true, eventLoopDelayMs: {p50, p99, max}, pool: {total, idle, waiting,
 * maxWaiting}, memoryMiB: {rss, heapUsed, external, arrayBuffers}}`, at info level whatever LOG_LEVEL says (it was asked for). It tells which
 * resource saturates under load: the event loop (delay) or the Postgres pool (requests waiting
 * for a connection). `bench/load.ts` reads these lines.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { Pool } from '../db/pool.ts';

export function startDiagnostics(pool: Pool, intervalSeconds: number, logger: Logger): () => Promise<void> {
  if (intervalSeconds <= 0) return () => Promise.resolve();
  const log = logger.child({ component: 'diagnostics' }, { level: 'info' });
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  let maxWaiting = 0;
  const sampler = setInterval(() => {
    maxWaiting = Math.max(maxWaiting, pool.waitingCount);
  }, 50);
  sampler.unref();
  const mib = (m: NodeJS.MemoryUsage) => {
    const f = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;
    return {
      rss: f(m.rss),
      heapUsed: f(m.heapUsed),
      external: f(m.external),
      arrayBuffers: f(m.arrayBuffers),
    };
  };
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  const timer = setInterval(() => {
    log.info(
      {
        diagnostics: true,
        eventLoopDelayMs: {
          p50: ms(delay.percentile(50)),
          p99: ms(delay.percentile(99)),
          max: ms(delay.max),
        },
        pool: { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, maxWaiting },
        memoryMiB: mib(process.memoryUsage()),
      },
      'load diagnostics',
    );
    delay.reset();
    maxWaiting = 0;
  }, intervalSeconds * 1000);
  timer.unref();
  return () => {
    clearInterval(timer);
    clearInterval(sampler);
    delay.disable();
    return Promise.resolve();
  };
}
