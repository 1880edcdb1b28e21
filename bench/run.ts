/**
 * `npm run bench [-- name…]`: runs every bench/*.bench.ts (or those whose name matches) one after
 * another, each in its own process, prints one table and writes bench/results/latest.json.
 * Figures are medians over repetitions with their spread, each next to a baseline measured in the
 * same run. Settings: BENCH_REPS, BENCH_TMP (scratch dir), BENCH_LIST_DIR (keep the seeded
 * listing database), and the per-bench variables documented in docs/BENCHMARKS.md.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, fmt, type BenchResult, type BenchRow } from './lib/common.ts';

const filter = process.argv.slice(2);
const benchDir = path.join(ROOT, 'bench');
const files = readdirSync(benchDir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => filter.length === 0 || filter.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  console.error('No bench scripts matched.');
  process.exit(1);
}

const resultsDir = path.join(benchDir, 'results');
mkdirSync(resultsDir, { recursive: true });
const started = new Date();
const load = [os.loadavg()];
const results: (BenchResult & { seconds: number; error?: string })[] = [];
for (const file of files) {
  const out = path.join(resultsDir, `.${file}.json`);
  rmSync(out, { force: true });
  console.error(`\n=== ${file}`);
  const t0 = performance.now();
  const res = spawnSync(process.execPath, ['--import', 'tsx', path.join(benchDir, file)], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, BENCH_OUT: out },
  });
  const seconds = (performance.now() - t0) / 1000;
  load.push(os.loadavg());
  try {
    results.push({ ...(JSON.parse(readFileSync(out, 'utf8')) as BenchResult), seconds });
    rmSync(out, { force: true });
  } catch {
    results.push({
      name: file,
      rows: [],
      notes: [],
      seconds,
      error: `exited with ${res.status ?? res.signal}`,
    });
  }
}

const range = (s: { median: number; min: number; max: number; spreadPct: number }) =>
  `${fmt(s.median)} [${fmt(s.min)}–${fmt(s.max)}] ±${s.spreadPct.toFixed(0)}%`;
const head = [
  'benchmark',
  'figure',
  'median [min–max] spread',
  'baseline (same run)',
  'baseline median [min–max]',
  'ratio',
  'goal',
  'met',
];
const rows = results.flatMap((r) =>
  r.error
    ? [[r.name, 'FAILED', r.error, '', '', '', '', 'no']]
    : r.rows.map((row: BenchRow) => [
        row.bench,
        row.figure,
        `${range(row.value)} ${row.unit}`,
        row.baselineName,
        row.baseline ? `${range(row.baseline)} ${row.unit}` : '',
        row.ratio !== undefined ? `${row.ratio.toFixed(2)}× (${row.ratioMeaning})` : '',
        row.goal,
        row.met === null ? '—' : row.met ? 'yes' : 'NO',
      ]),
);
const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (r: string[]) => r.map((c, i) => c.padEnd(width[i]!)).join(' | ');
console.log(
  `\nMediary benchmarks — ${started.toISOString()}, ${os.cpus().length} cores, Node ${process.version}`,
);
console.log(line(head));
console.log(width.map((w) => '-'.repeat(w)).join('-|-'));
for (const r of rows) console.log(line(r));
for (const r of results) for (const n of r.notes) console.log(`- ${r.name}: ${n}`);
const loads = load.map((l) => l[0]!.toFixed(2)).join(' → ');
console.log(
  `- load average (1 min) before and after each script: ${loads}; other work on the machine adds noise.`,
);

const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], {
  cwd: ROOT,
  encoding: 'utf8',
}).stdout.trim();
writeFileSync(
  path.join(resultsDir, 'latest.json'),
  JSON.stringify(
    {
      started: started.toISOString(),
      finished: new Date().toISOString(),
      commit,
      machine: {
        cores: os.cpus().length,
        cpu: os.cpus()[0]?.model,
        memoryGiB: os.totalmem() / 1024 ** 3,
        node: process.version,
      },
      loadAverage: load,
      results,
    },
    null,
    2,
  ),
);
console.log(`\nwrote ${path.relative(process.cwd(), path.join(resultsDir, 'latest.json'))}`);
process.exit(results.some((r) => r.error) ? 1 : 0);
