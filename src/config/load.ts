import { int, type Env } from './env.ts';

/** Behaviour under load: admission control of new uploads and the load diagnostics. */
export interface LoadSettings {
  /** Load diagnostics: event-loop delay and Postgres pool waits logged every interval (0 = off). */
  diagnostics: { intervalSeconds: number };
  /**
   * Admission control (issue 22): new upload sessions are refused with 503 + Retry-After while the
   * oldest image job waiting in its lane is older than `maxBacklogSeconds` (0 = never), so
   * processing keeps up with uploads instead of starving behind them.
   */
  admission: { maxBacklogSeconds: number };
}

/**
 * A photo waits at most about this long for processing before new uploads are refused
 * (docs/BENCHMARKS.md, `npm run bench:load`, measured the share processing keeps under load).
 */
export const DEFAULT_MAX_BACKLOG_SECONDS = 10;

/** DIAGNOSTICS_INTERVAL_SECONDS, ADMISSION_MAX_BACKLOG_SECONDS. */
export function loadSettings(env: Env): LoadSettings {
  return {
    diagnostics: { intervalSeconds: int(env, 'DIAGNOSTICS_INTERVAL_SECONDS', 0, 0, 3600) },
    admission: {
      maxBacklogSeconds: int(
        env,
        'ADMISSION_MAX_BACKLOG_SECONDS',
        DEFAULT_MAX_BACKLOG_SECONDS,
        0,
        7 * 24 * 3600,
      ),
    },
  };
}
