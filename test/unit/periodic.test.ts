/** The one periodic-job runner (src/operations/periodic.ts) both timers (sweeper, post media) use. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import pino from 'pino';
import { runPeriodic, startPeriodic } from '../../src/operations/periodic.ts';

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

test('a failed run is logged with the job name and not thrown', async () => {
  const { logger, lines } = capturingLogger();
  await runPeriodic('unit job', () => Promise.reject(new Error('boom')), logger);
  const warn = lines.find((l) => l.job === 'unit job');
  assert.ok(warn, 'the failure is logged');
  assert.equal(warn.level, 40);
  assert.match(String(warn.msg), /unit job failed/);
});

test('runs keep coming after a failure, never two at once, and stop waits for the run in progress', async () => {
  const { logger } = capturingLogger();
  let running = 0;
  let most = 0;
  let runs = 0;
  let finished = 0;
  const stop = startPeriodic(
    'overlap',
    0.005,
    async () => {
      runs++;
      running++;
      most = Math.max(most, running);
      await sleep(20); // longer than the interval: ticks meanwhile must be skipped
      running--;
      finished++;
      if (runs === 1) throw new Error('first run fails');
    },
    logger,
  );
  while (runs < 3) await sleep(5);
  await stop();
  assert.equal(most, 1, 'never two runs at once');
  assert.equal(running, 0, 'stop waited for the run in progress');
  assert.equal(finished, runs);
  const after = runs;
  await sleep(30);
  assert.equal(runs, after, 'no run after stop');
});

test('an interval of 0 never runs the job', async () => {
  let ran = false;
  const stop = startPeriodic(
    'off',
    0,
    async () => {
      ran = true;
    },
    capturingLogger().logger,
  );
  await sleep(20);
  await stop();
  assert.equal(ran, false);
});
