/**
 * Start-up benchmark (issue 17 §5): whole processes, each against a bare `node -e 0` measured in
 * the same run, interleaved round by round so load affects them alike.
 *
 *   npm run bench:startup            (BENCH_REPS rounds, default 7; BENCH_SKIP_BUILD=1 keeps lib/)
 *
 * - `mediary --help` from the compiled build (lib/), and — for comparison — from the TypeScript
 *   sources through tsx (what every command ran before);
 * - `mediary agent --once` with nothing to send (an empty spool and watch directory);
 * - the peak RSS (VmHWM) of an idle `mediary agent --watch` after it has settled.
 * Goals: help under 0.25 s, the idle agent under 60 MB. Prints a table and writes
 * bench/results/startup.json.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, fmt, stat, type Stat } from './lib/common.ts';

const REPS = Number(process.env.BENCH_REPS ?? 7);
const BIN = path.join(ROOT, 'bin', 'mediary.mjs');
const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

if (process.env.BENCH_SKIP_BUILD !== '1') {
  const b = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build-server.mjs')], {
    stdio: 'inherit',
  });
  if (b.status !== 0) throw new Error('build failed');
}

const work = await mkdtemp(path.join(os.tmpdir(), 'mediary-bench-startup-'));
const spool = path.join(work, 'spool');
const watch = path.join(work, 'watch');
await mkdir(spool);
await mkdir(watch);
const agentEnv = { ...process.env, MEDIA_ENABLED: 'true', LOG_LEVEL: 'warn' };
const agentArgs = [
  '--server',
  'http://127.0.0.1:9',
  '--key',
  'mdk_bench',
  '--spool',
  spool,
  '--watch',
  watch,
];

/** Wall seconds and peak RSS (bytes, when /usr/bin/time is there) of one whole process. */
function once(args: string[], env: NodeJS.ProcessEnv = process.env): { seconds: number; rss?: number } {
  const argv = TIME ? [TIME, '-f', '%M', process.execPath, ...args] : [process.execPath, ...args];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), {
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const kb = TIME ? Number(r.stderr.trim().split('\n').at(-1)) : NaN;
  return { seconds, rss: Number.isFinite(kb) ? kb * 1024 : undefined };
}

/** VmHWM of an idle `agent --watch` (or `node -e` idling) after `settleMs`. */
async function idlePeak(args: string[], env: NodeJS.ProcessEnv, settleMs = 3000): Promise<number> {
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  await sleep(settleMs);
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
  return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1]) * 1024;
}

const cases = {
  node: () => once(['-e', '0']),
  help: () => once([BIN, '--help']),
  helpTsx: () => once(['--import', 'tsx', path.join(ROOT, 'src', 'main.ts'), '--help']),
  agentOnce: () => once([BIN, 'agent', '--once', ...agentArgs], agentEnv),
};
const times: Record<keyof typeof cases, number[]> = { node: [], help: [], helpTsx: [], agentOnce: [] };
const rss: Record<keyof typeof cases, number[]> = { node: [], help: [], helpTsx: [], agentOnce: [] };
const idleAgent: number[] = [];
const idleNode: number[] = [];
try {
  for (const name of Object.keys(cases) as (keyof typeof cases)[]) cases[name](); // warm the file cache
  for (let round = 0; round < REPS; round++) {
    for (const name of Object.keys(cases) as (keyof typeof cases)[]) {
      const r = cases[name]();
      times[name].push(r.seconds);
      if (r.rss !== undefined) rss[name].push(r.rss);
    }
    process.stderr.write(
      `[bench] startup round ${round + 1}/${REPS}: node ${fmt(times.node.at(-1)!)} s, help ${fmt(times.help.at(-1)!)} s, help (tsx) ${fmt(times.helpTsx.at(-1)!)} s, agent --once ${fmt(times.agentOnce.at(-1)!)} s\n`,
    );
  }
  for (let i = 0; i < Math.min(REPS, 3); i++) {
    idleAgent.push(await idlePeak([BIN, 'agent', ...agentArgs], agentEnv));
    idleNode.push(await idlePeak(['-e', 'setInterval(() => {}, 1000)'], process.env));
  }
} finally {
  await rm(work, { recursive: true, force: true });
}

const MB = 1024 * 1024;
const row = (
  figure: string,
  unit: string,
  value: Stat,
  baseline: Stat,
  goal: string,
  met: boolean | null,
) => ({
  figure,
  unit,
  value,
  baseline,
  extra: value.median - baseline.median,
  goal,
  met,
});
const rows = [
  row(
    'mediary --help (compiled)',
    's',
    stat(times.help),
    stat(times.node),
    '< 0.25 s',
    stat(times.help).median < 0.25,
  ),
  row('mediary --help (tsx, sources)', 's', stat(times.helpTsx), stat(times.node), '— (before)', null),
  row('mediary agent --once, nothing to send', 's', stat(times.agentOnce), stat(times.node), '—', null),
  ...(rss.help.length
    ? [
        row(
          'peak RSS, mediary --help (compiled)',
          'MB',
          stat(rss.help.map((b) => b / MB)),
          stat(rss.node.map((b) => b / MB)),
          '—',
          null,
        ),
        row(
          'peak RSS, mediary --help (tsx)',
          'MB',
          stat(rss.helpTsx.map((b) => b / MB)),
          stat(rss.node.map((b) => b / MB)),
          '— (before)',
          null,
        ),
        row(
          'peak RSS, agent --once',
          'MB',
          stat(rss.agentOnce.map((b) => b / MB)),
          stat(rss.node.map((b) => b / MB)),
          '—',
          null,
        ),
      ]
    : []),
  row(
    'peak RSS (VmHWM), idle agent --watch',
    'MB',
    stat(idleAgent.map((b) => b / MB)),
    stat(idleNode.map((b) => b / MB)),
    '< 60 MB',
    stat(idleAgent).median / MB < 60,
  ),
];
const head = ['figure', 'median [min–max]', 'node -e 0 (same run)', 'difference', 'goal', 'met'];
const lines = rows.map((r) => [
  r.figure,
  `${fmt(r.value.median, 2)} [${fmt(r.value.min, 2)}–${fmt(r.value.max, 2)}] ${r.unit}`,
  `${fmt(r.baseline.median, 2)} ${r.unit}`,
  `+${fmt(r.extra, 2)} ${r.unit}`,
  r.goal,
  r.met === null ? '—' : r.met ? 'yes' : 'NO',
]);
const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
const print = (cells: string[]) => console.log(cells.map((c, i) => c.padEnd(widths[i]!)).join(' | '));
console.log(
  `\nmediary start-up — ${new Date().toISOString()}, ${os.cpus().length} cores, Node ${process.version}, load ${os.loadavg()[0]!.toFixed(1)}, ${REPS} rounds`,
);
print(head);
print(widths.map((w) => '-'.repeat(w)));
for (const l of lines) print(l);
await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
await writeFile(
  path.join(ROOT, 'bench', 'results', 'startup.json'),
  JSON.stringify({ at: new Date().toISOString(), load: os.loadavg(), reps: REPS, rows }, null, 2) + '\n',
);
console.log('\nwritten: bench/results/startup.json');
