/**
 * Garbage collection per GiB uploaded, before vs after a change (issue 22 §1: the regime of one
 * full Mark-Compact per ≈ 20 MiB received). Two versions of `mediary serve` run side by side, each
 * with `--trace-gc`, beside the raw durable sink (bench/lib/durable-sink.ts); `curl -T` (64 KiB
 * writes) uploads BENCH_CURL_BYTES (1 GiB) to each in turn, order rotated per round, `sync` before
 * each. Per upload: Mark-Compacts and scavenges (counted from the service's `--trace-gc` lines
 * between the PUT and the end of complete), their main-thread pause, the service process' CPU
 * seconds (all its threads, from /proc), and MiB/s against the sink's in the same round.
 *
 * The two versions are git trees exported to scratch (so both run their TypeScript through tsx):
 * BENCH_GC_BEFORE (default `main`) and BENCH_GC_AFTER (default `HEAD`; `.` = this checkout as it
 * is, uncommitted edits included) — the same tree twice to compare Node/V8 flags.
 * BENCH_GC_NODE_ARGS adds flags to both (`--max-semi-space-size=1 --heap-growing-percent=1` puts
 * any process in the regime at once: docs/BENCHMARKS.md), BENCH_GC_BEFORE_ARGS and
 * BENCH_GC_AFTER_ARGS to one. BENCH_REPS rounds (8).
 * Prints a table and writes JSON (BENCH_OUT or stdout).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  memoryOf,
  GiB,
  MiB,
  ROOT,
  fmt,
  log,
  report,
  reps,
  scratch,
  startSinglePutService,
  stat,
  syncDisks,
} from './lib/common.ts';
import {
  curlIn,
  deleteMedia,
  openSession,
  putAndComplete,
  startDurableSink,
  writeSourceFile,
} from './lib/curl.ts';
import { GcCounter, type GcCounts } from './lib/gc-trace.ts';
import { processCpu } from './lib/thread-cpu.ts';

const SIZE = Number(process.env.BENCH_CURL_BYTES ?? GiB);
const ROUNDS = reps(8);
const BEFORE = process.env.BENCH_GC_BEFORE ?? 'main';
const AFTER = process.env.BENCH_GC_AFTER ?? 'HEAD';
const args = (v: string | undefined) => (v ?? '').split(/\s+/).filter(Boolean);
const NODE_ARGS = args(process.env.BENCH_GC_NODE_ARGS);
const OWN_ARGS: Record<string, string[]> = {
  before: args(process.env.BENCH_GC_BEFORE_ARGS),
  after: args(process.env.BENCH_GC_AFTER_ARGS),
};

const work = await scratch('curl-gc');
const source = path.join(work.dir, 'source.mp4');
const SHA = await writeSourceFile(source, SIZE);
const curl = curlIn(work.dir);

/** `ref` exported into scratch with this checkout's node_modules; returns its bin/mediary.mjs. */
async function exportTree(name: string, ref: string): Promise<{ bin: string; commit: string }> {
  if (ref === '.') {
    return { bin: path.join(ROOT, 'bin', 'mediary.mjs'), commit: 'working tree' };
  }
  const dir = path.join(work.dir, `tree-${name}`);
  await mkdir(dir);
  const commit = execFileSync('git', ['-C', ROOT, 'rev-parse', '--short', ref], { encoding: 'utf8' }).trim();
  execFileSync('sh', ['-c', `git -C "${ROOT}" archive "${ref}" | tar -x -C "${dir}"`]);
  await symlink(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return { bin: path.join(dir, 'bin', 'mediary.mjs'), commit };
}

/** CPU seconds of one process, all its threads (utime + stime). */
function cpuSeconds(pid: number): number {
  const { user, sys } = processCpu(pid);
  return user + sys;
}

interface Variant {
  name: string;
  commit: string;
  svc: Awaited<ReturnType<typeof startSinglePutService>>['svc'];
  auth: string;
  gc: GcCounter;
  /** RSS once started and settled (3 s), before any upload, MiB: what start-up garbage costs. */
  startRssMiB: number;
}

async function startVariant(name: string, ref: string): Promise<Variant> {
  const { bin, commit } = await exportTree(name, ref);
  const gc = new GcCounter();
  const { svc, dev } = await startSinglePutService(path.join(work.dir, `data-${name}`), {
    bin,
    nodeArgs: ['--trace-gc', ...NODE_ARGS, ...OWN_ARGS[name]!],
    onStdout: (line) => gc.line(line),
  });
  await new Promise((r) => setTimeout(r, 3000));
  const startRssMiB = memoryOf(svc.pid).rss / MiB;
  return { name, commit, svc, auth: dev.auth.authorization!, gc, startRssMiB };
}

interface Sample extends GcCounts {
  seconds: number;
  cpuSeconds: number;
  /** The service's resident set after the upload, MiB (a larger old-generation limit costs memory). */
  rssMiB: number;
}

/** Session (untimed), then PUT with `curl -T` + complete (timed and counted); deleted afterwards. */
async function mediaryUpload(v: Variant): Promise<Sample> {
  const to = { api: (p: string) => v.svc.api(p), authorization: v.auth, label: v.name };
  const session = await openSession(curl, to, { bytes: SIZE, sha256: SHA });
  // Trace lines of earlier work reach us through a pipe: let them arrive before counting.
  await new Promise((r) => setTimeout(r, 300));
  const gc0 = v.gc.snapshot();
  const cpu0 = cpuSeconds(v.svc.pid);
  const t0 = performance.now();
  await putAndComplete(curl, to, session, source);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(v.svc.pid) - cpu0;
  await new Promise((r) => setTimeout(r, 300));
  const gc = v.gc.since(gc0);
  await deleteMedia(curl, to, session.mediaId);
  return { seconds, ...gc, cpuSeconds: cpu, rssMiB: memoryOf(v.svc.pid).rss / MiB };
}

const sink = await startDurableSink(curl, path.join(work.dir, 'sink'), { file: source, sha256: SHA });
const sinkUpload = () => sink.upload();

const loadAvg = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
const variants: Variant[] = [];
const samples: Record<string, Sample[]> = { before: [], after: [] };
const sinkSeconds: number[] = [];
const loads: string[] = [];
try {
  variants.push(await startVariant('before', BEFORE), await startVariant('after', AFTER));
  log(
    `curl gc: ${SIZE / MiB} MiB per upload, ${ROUNDS} rounds, before ${variants[0]!.commit}, after ${variants[1]!.commit}, node args ${NODE_ARGS.join(' ') || '(none)'}, before's own ${OWN_ARGS.before!.join(' ') || '(none)'}, after's own ${OWN_ARGS.after!.join(' ') || '(none)'}, load average ${loadAvg()}`,
  );
  for (let round = 0; round < ROUNDS; round++) {
    const names = ['sink', 'before', 'after'];
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length]!;
      syncDisks();
      if (name === 'sink') {
        const s = await sinkUpload();
        sinkSeconds.push(s);
        log(`${round + 1}/${ROUNDS} sink: ${fmt(SIZE / MiB / s)} MiB/s`);
      } else {
        const s = await mediaryUpload(variants.find((v) => v.name === name)!);
        samples[name]!.push(s);
        log(
          `${round + 1}/${ROUNDS} ${name}: ${fmt(SIZE / MiB / s.seconds)} MiB/s, ${s.markCompacts} Mark-Compacts, ${s.scavenges} scavenges, GC pause ${fmt(s.gcPauseMs)} ms, CPU ${fmt(s.cpuSeconds)} s, RSS ${fmt(s.rssMiB)} MiB${s.markCompacts ? ` (${JSON.stringify(s.markCompactReasons)})` : ''}`,
        );
      }
    }
    loads.push(loadAvg());
  }
} finally {
  await sink.stop();
  for (const v of variants) await v.svc.kill('SIGTERM');
  await work.cleanup();
}

const gib = SIZE / GiB;
const perGiB = (xs: Sample[], k: Exclude<keyof Sample, 'markCompactReasons' | 'rssMiB'>) =>
  stat(xs.map((s) => s[k] / gib));
const sinkMiBps = stat(sinkSeconds.map((s) => SIZE / MiB / s));
const rows = variants.flatMap((v) => {
  const xs = samples[v.name]!;
  const mibps = stat(xs.map((s) => SIZE / MiB / s.seconds));
  const perRound = xs.map((s, i) => (sinkSeconds[i]! / s.seconds).toFixed(2)).join(', ');
  return [
    {
      bench: `curl -T ${SIZE / MiB} MiB, ${v.name} (${v.commit}${OWN_ARGS[v.name]!.length ? ' ' + OWN_ARGS[v.name]!.join(' ') : ''})`,
      figure: 'Mark-Compacts per GiB',
      unit: '/GiB',
      value: perGiB(xs, 'markCompacts'),
      baselineName: '—',
      goal: 'low in every upload (≤ 2)',
      met: xs.every((s) => s.markCompacts / gib <= 2),
    },
    {
      bench: `${v.name}`,
      figure: 'scavenges per GiB',
      unit: '/GiB',
      value: perGiB(xs, 'scavenges'),
      baselineName: '—',
      goal: '—',
      met: null,
    },
    {
      bench: `${v.name}`,
      figure: 'main-thread GC pause per GiB',
      unit: 'ms/GiB',
      value: perGiB(xs, 'gcPauseMs'),
      baselineName: '—',
      goal: '—',
      met: null,
    },
    {
      bench: `${v.name}`,
      figure: 'service CPU per GiB',
      unit: 's/GiB',
      value: perGiB(xs, 'cpuSeconds'),
      baselineName: '—',
      goal: '—',
      met: null,
    },
    {
      bench: `${v.name}`,
      figure: 'service RSS once started (3 s settled), before any upload',
      unit: 'MiB',
      value: stat([v.startRssMiB]),
      baselineName: '—',
      goal: '—',
      met: null,
    },
    {
      bench: `${v.name}`,
      figure: 'service RSS after each upload',
      unit: 'MiB',
      value: stat(xs.map((s) => s.rssMiB)),
      baselineName: '—',
      goal: '—',
      met: null,
    },
    {
      bench: `${v.name}`,
      figure: 'Mediary PUT + complete',
      unit: 'MiB/s',
      value: mibps,
      baselineName: 'raw durable sink, same rounds',
      baseline: sinkMiBps,
      ratio: mibps.median / sinkMiBps.median,
      ratioMeaning: `Mediary / sink (per round ${perRound})`,
      goal: '≥ 0.95×',
      met: mibps.median / sinkMiBps.median >= 0.95,
    },
  ];
});
for (const r of rows) {
  const base =
    'baseline' in r && r.baseline
      ? ` | ${r.baselineName}: ${fmt(r.baseline.median)} | ${fmt(r.ratio, 2)}× ${r.ratioMeaning}`
      : '';
  process.stderr.write(
    `[curl-gc] ${r.bench} | ${r.figure}: ${fmt(r.value.median)} [${fmt(r.value.min)}–${fmt(r.value.max)}] ${r.unit}${base}\n`,
  );
}
for (const v of variants) {
  const reasons: Record<string, number> = {};
  for (const s of samples[v.name]!)
    for (const [k, n] of Object.entries(s.markCompactReasons)) reasons[k] = (reasons[k] ?? 0) + n;
  process.stderr.write(`[curl-gc] ${v.name}: why the Mark-Compacts ran: ${JSON.stringify(reasons)}\n`);
}
process.stderr.write(`[curl-gc] load average per round: ${loads.join(' | ')}\n`);
await report({
  name: 'curl-gc',
  rows,
  notes: [JSON.stringify({ nodeArgs: NODE_ARGS, ownArgs: OWN_ARGS, loads, samples, sinkSeconds })],
});
