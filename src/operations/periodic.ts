import type { Logger } from 'pino';

/** One run of a periodic job. */
export type PeriodicTask = () => Promise<void>;

/**
 * One run of the periodic job `name`. Every timer of the process runs its job through here, so
 * this is the one place where a run can be wrapped (a cluster-wide lock so that only one
 * instance runs it at a time, metrics). A failed run is logged and left to the next interval.
 */
export async function runPeriodic(name: string, task: PeriodicTask, logger: Logger): Promise<void> {
  try {
    await task();
  } catch (err: unknown) {
    logger.warn({ err, job: name }, `${name} failed; retrying next interval`);
  }
}

/**
 * Runs `task` every `intervalSeconds` through {@link runPeriodic}, never two runs of it at once
 * (a tick while one runs is skipped); 0 or less never runs it. Returns a stop function that
 * clears the timer and waits for a run in progress.
 */
export function startPeriodic(
  name: string,
  intervalSeconds: number,
  task: PeriodicTask,
  logger: Logger,
): () => Promise<void> {
  if (intervalSeconds <= 0) return () => Promise.resolve();
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    running ??= runPeriodic(name, task, logger).finally(() => {
      running = undefined;
    });
  }, intervalSeconds * 1000);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await running;
  };
}
