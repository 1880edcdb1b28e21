/**
 * Video pipeline benchmark (one run): a 10 s 1080p clip → 360p + 720p HLS.
 *
 *   node --import tsx bench/video-pipeline.ts        (npm run bench:video)
 *
 * Compares, in this run, on this machine:
 *   - the whole pipeline: complete → queue → worker reads the original → probe → poster (+ its four
 *     WebP variants) → the ladder (one ffmpeg run) → objects into the store → READY
 *     (VIDEO_MAX_RENDITION=720p so the ladder is 360p + 720p);
 *   - the same ffmpeg command run by hand (the adapter's `hlsArguments`, spawned directly);
 *   - one ffmpeg run per rendition (each decodes the source again).
 * Goal: the pipeline takes ≤ 1.1× the hand-run command. `BENCH_REPS` rounds (default 5), each
 * running the hand command and the pipeline once, alternating which goes first; medians and the
 * per-round ratios are reported with the load average at each round's start.
 *
 * Besides wall time, the CPU seconds each side spent (this process, its Postgres, and the ffmpeg /
 * ffprobe runs it waited for; the pipeline's include the upload), and the machine's busy CPU
 * seconds meanwhile: on a shared 2-core box the wall-clock ratio moves with what other tenants
 * take, the CPU a side spends much less.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { startServer } from '../src/app.ts';
import { mintUserToken } from '../src/auth/principals.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { hlsArguments } from '../src/infra/video/ffmpeg.ts';
import { cpuDelta, machineBusySeconds, reapedChildrenSeconds, treeCpu } from './lib/cpu.ts';
import { threadCpu } from './lib/thread-cpu.ts';
import { makeBenchClip } from './lib/video-clip.ts';
import { planLadder } from '../src/processing/video/ladder.ts';
import { VIDEO_JOB_STEPS, type VideoJobStep } from '../src/processing/video-job.ts';
import { JWT_SECRET, tempDir, testEnv } from '../test/helpers/server.ts';
import { upload } from '../test/processing/helpers.ts';

const run = promisify(execFile);
const PRESET = 'veryfast';
const SEGMENT = 4;
/** Rounds; each runs the hand command and the pipeline once, alternating which goes first. */
const REPS = Number(process.env.BENCH_REPS ?? 5);

const median = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};

async function ffmpeg(args: string[]): Promise<void> {
  await run('ffmpeg', ['-hide_banner', '-nostdin', '-y', '-v', 'error', ...args], {
    maxBuffer: 64 * 1024 * 1024,
  });
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

/** CPU seconds of this process tree, by part; `machine`: every core's busy seconds. */
function cpuNow(): Record<string, number> {
  const tree = treeCpu(process.pid);
  const out: Record<string, number> = { machine: machineBusySeconds(), 'ffmpeg/ffprobe (exited)': 0 };
  for (const [name, s] of Object.entries(tree)) {
    const part = name === 'self' ? 'node' : name.startsWith('postgres') ? 'postgres' : name;
    out[part] = (out[part] ?? 0) + s;
  }
  out['ffmpeg/ffprobe (exited)'] = reapedChildrenSeconds(process.pid);
  // Where node's share goes: its main thread (JS) and the rest (libuv pool, where sharp works and
  // hashes, its libvips workers, V8's helpers; threads that ended meanwhile included): node minus
  // the main thread. Parts of `node`, not added to `ours`.
  const main = threadCpu(process.pid).get(process.pid);
  out[NODE_MAIN] = main ? main.user + main.sys : 0;
  return out;
}

const NODE_MAIN = 'node: main thread';
const NODE_OTHER = 'node: other threads';

/** Runs `fn`, returning its result and the CPU seconds spent meanwhile (see {@link cpuNow}). */
async function withCpu<T>(fn: () => Promise<T>): Promise<{ value: T; cpu: Record<string, number> }> {
  const before = cpuNow();
  const value = await fn();
  const cpu = cpuDelta(before, cpuNow());
  cpu[NODE_OTHER] = Math.max(0, (cpu.node ?? 0) - cpu[NODE_MAIN]!);
  cpu.ours = Object.entries(cpu)
    .filter(([k]) => k !== 'machine' && !k.startsWith('node: '))
    .reduce((sum, [, v]) => sum + v, 0);
  return { value, cpu };
}

async function main() {
  const dir = await tempDir('mediary-bench-video-');
  const clip = await makeBenchClip(dir);
  const bytes = await readFile(clip);
  const ladder = planLadder(1920, 1080).filter((r) => r.name === '360p' || r.name === '720p');
  console.log(
    `input: 10 s 1920×1080 30 fps H.264 + AAC, ${(bytes.length / 1e6).toFixed(1)} MB; ladder ${ladder
      .map((r) => r.name)
      .join(' + ')}; preset ${PRESET}; ${os.cpus().length} CPUs`,
  );

  // Hand-run: the exact arguments the pipeline's adapter uses, minus progress reporting.
  const handDir = path.join(dir, 'hand');
  const handRun = async () => {
    await rm(handDir, { recursive: true, force: true });
    await Promise.all(ladder.map((_, i) => mkdir(path.join(handDir, String(i)), { recursive: true })));
    return timed(() =>
      ffmpeg(hlsArguments(clip, handDir, ladder, true, { preset: PRESET, segmentSeconds: SEGMENT })),
    );
  };

  // One ffmpeg per rendition (sequential: each has both cores to itself, like the single run); once.
  const perDir = path.join(dir, 'per');
  const perRendition = await timed(async () => {
    for (const r of ladder) {
      const out = path.join(perDir, r.name);
      await mkdir(path.join(out, '0'), { recursive: true });
      await ffmpeg(hlsArguments(clip, out, [r], true, { preset: PRESET, segmentSeconds: SEGMENT }));
    }
  });

  // The whole pipeline through the real server and worker.
  const dataDir = await tempDir('mediary-bench-video-data-');
  const env = await testEnv(dataDir, {
    LOG_LEVEL: 'silent',
    PROCESSING_CONCURRENCY: '1',
    VIDEO_MAX_RENDITION: '720p',
    VIDEO_PRESET: PRESET,
    HLS_SEGMENT_SECONDS: String(SEGMENT),
    // One PUT however large the clip (BENCH_VIDEO_NOISE makes it 44 MB): the bench's upload is a
    // single PUT, and the upload is not what it measures.
    MULTIPART_THRESHOLD_BYTES: String(1024 * 1024 * 1024),
  });
  const config = loadConfig(env);
  const server = await startServer(config, createLogger('silent', 2));
  const t = {
    server,
    config,
    dataDir,
    base: config.publicUrl,
    api: (p: string) => `${config.publicUrl}/api/v1${p}`,
  } as unknown as Parameters<typeof upload>[0];
  const auth = { authorization: `Bearer ${await mintUserToken(JWT_SECRET, 'bench')}` };
  /** Enqueue → READY of one upload on the database clock (the upload itself is not counted). */
  const pipelineRun = async (round: number) => {
    const beforeUpload = cpuNow();
    const { id } = await upload(t, auth, Buffer.from(bytes), 'video/mp4', { fileName: `round-${round}` });
    // What the upload itself cost (client and server are this process); the job starts meanwhile.
    const uploadCpu = cpuDelta(beforeUpload, cpuNow());
    // The end is read from the database clock, so waiting needs no haste: one indexed SELECT every
    // 250 ms. (It was the status endpoint every 25 ms — HTTP, auth and a query, ≈ 1 CPU s per job
    // in this very process, charged to the pipeline while x264 wanted the cores.)
    const deadline = Date.now() + 600_000;
    let st: { status: string; error: unknown };
    for (;;) {
      const { rows } = await server.database.pool.query<{ status: string; error: unknown }>(
        'SELECT status, error FROM media WHERE id = $1',
        [id],
      );
      st = rows[0]!;
      if (st.status === 'READY' || st.status === 'FAILED' || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    if (st.status !== 'READY') throw new Error(`bench media ended ${st.status}: ${JSON.stringify(st.error)}`);
    const { rows } = await server.database.pool.query<{ total: string; pickup: string }>(
      `SELECT extract(epoch FROM m.processed_at - j.created_on) AS total,
              extract(epoch FROM j.started_on - j.created_on) AS pickup
         FROM media m JOIN pgboss.job j ON j.name = 'media-process-video' AND j.data->>'mediaId' = m.id::text
        WHERE m.id = $1`,
      [id],
    );
    return {
      id,
      total: Number(rows[0]!.total),
      pickup: Number(rows[0]!.pickup),
      uploadCpu: uploadCpu.node! + (uploadCpu.postgres ?? 0),
    };
  };
  // The job's own step timings (ms), counted rounds only.
  const steps = new Map<string, number[]>();
  let counting = false;
  VIDEO_JOB_STEPS.subscribe((msg) => {
    const m = msg as VideoJobStep;
    if (counting) steps.set(m.step, [...(steps.get(m.step) ?? []), m.end - m.start]);
  });
  const hands: number[] = [];
  const pipelines: number[] = [];
  const handCpu: Record<string, number>[] = [];
  const pipelineCpu: Record<string, number>[] = [];
  const pickups: number[] = [];
  const uploadCpus: number[] = [];
  const loads: number[] = [];
  let renditions: unknown;
  try {
    // Warm-up (JIT, first sharp load, database): one pipeline run, not counted.
    await pipelineRun(-1);
    counting = true;
    // Rounds alternate which goes first, so both see the same load on average.
    for (let round = 0; round < REPS; round++) {
      loads.push(os.loadavg()[0]!);
      const order = round % 2 === 0 ? (['hand', 'pipeline'] as const) : (['pipeline', 'hand'] as const);
      for (const which of order) {
        if (which === 'hand') {
          const { value, cpu } = await withCpu(handRun);
          hands.push(value);
          handCpu.push(cpu);
        } else {
          const { value: r, cpu } = await withCpu(() => pipelineRun(round));
          pipelineCpu.push(cpu);
          pipelines.push(r.total);
          pickups.push(r.pickup);
          uploadCpus.push(r.uploadCpu);
          if (round === REPS - 1) {
            const media = await fetch(t.api(`/media/${r.id}`), { headers: auth }).then((x) => x.json());
            renditions = media.hls.renditions;
          }
        }
      }
      console.log(
        `round ${round + 1}/${REPS}: pipeline ${pipelines.at(-1)!.toFixed(2)} s, hand ${hands.at(-1)!.toFixed(2)} s, ` +
          `ratio ${(pipelines.at(-1)! / hands.at(-1)!).toFixed(3)} (load ${loads.at(-1)!.toFixed(1)}); ` +
          `CPU s pipeline ${pipelineCpu.at(-1)!.ours!.toFixed(2)}, hand ${handCpu.at(-1)!.ours!.toFixed(2)}`,
      );
    }
  } finally {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
  }

  const perRound = pipelines.map((p, i) => p / hands[i]!);
  const cpuParts = [...new Set([...pipelineCpu, ...handCpu].flatMap((c) => Object.keys(c)))];
  const cpuMedians = (runs: Record<string, number>[]) =>
    Object.fromEntries(cpuParts.map((k) => [k, median(runs.map((c) => c[k] ?? 0))]));
  const cpu = { pipeline: cpuMedians(pipelineCpu), hand: cpuMedians(handCpu) };
  const cpuRatioPerRound = pipelineCpu.map((c, i) => c.ours! / handCpu[i]!.ours!);
  const pipeline = median(pipelines);
  const hand = median(hands);
  const ratio = pipeline / hand;
  const results = {
    input: { width: 1920, height: 1080, fps: 30, seconds: 10, bytes: bytes.length },
    ladder: ladder.map((r) => r.name),
    preset: PRESET,
    cpus: os.cpus().length,
    // Other suites share this machine: a load far above the CPU count makes one run noisy.
    loadAverageAtRoundStarts: loads,
    loadAverageAtEnd: os.loadavg(),
    rounds: REPS,
    seconds: {
      pipelineEnqueueToReady: { median: pipeline, samples: pipelines },
      pipelinePickup: { median: median(pickups), samples: pickups },
      handRunCommand: { median: hand, samples: hands },
      oneRunPerRendition: perRendition,
    },
    ratios: {
      pipelineVsHand: ratio,
      pipelineVsHandPerRound: perRound,
      pipelineVsHandMedianPerRound: median(perRound),
      perRenditionVsHand: perRendition / hand,
      cpuPipelineVsHand: cpu.pipeline.ours! / cpu.hand.ours!,
      cpuPipelineVsHandPerRound: cpuRatioPerRound,
      goal: { pipelineVsHand: 1.1 },
    },
    // CPU seconds by part, median of the rounds; `ours` is their sum, `machine` all cores' busy time.
    cpuSeconds: {
      ...cpu,
      uploadOfPipeline: median(uploadCpus),
      samples: { pipeline: pipelineCpu, hand: handCpu },
    },
    renditions,
    jobStepsMs: Object.fromEntries([...steps].map(([k, v]) => [k, { median: median(v), samples: v }])),
  };
  const row = (k: string, v: string, note = '') => console.log(`${k.padEnd(48)}${v.padStart(10)}  ${note}`);
  console.log('');
  const range = (xs: number[]) => `[${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}]`;
  row(
    `pipeline: enqueue → READY (s), median of ${REPS}`,
    pipeline.toFixed(2),
    `${range(pipelines)} probe + poster/variants + ladder + store + db`,
  );
  row(`same ffmpeg command by hand (s), median of ${REPS}`, hand.toFixed(2), range(hands));
  row('one ffmpeg run per rendition (s)', perRendition.toFixed(2));
  row('ratio pipeline / hand', ratio.toFixed(3), `goal ≤ 1.1 ${ratio <= 1.1 ? 'met' : 'NOT met'}`);
  row('ratio per round, median', median(perRound).toFixed(3), range(perRound));
  console.log(
    '\nCPU seconds, median of the rounds (ours = this process + Postgres + exited ffmpeg/ffprobe):',
  );
  for (const k of cpuParts)
    console.log(
      `  ${k.padEnd(30)}${cpu.pipeline[k]!.toFixed(2).padStart(8)} pipeline ${cpu.hand[k]!.toFixed(2).padStart(8)} hand`,
    );
  row("  of the pipeline's: the upload (node + Postgres)", median(uploadCpus).toFixed(2));
  row(
    'CPU ratio pipeline / hand (ours)',
    (cpu.pipeline.ours! / cpu.hand.ours!).toFixed(3),
    range(cpuRatioPerRound),
  );
  console.log('\njob steps (ms, median [range]; the poster runs beside the ladder, the rest in series):');
  for (const [name, ms] of steps) {
    console.log(
      `  ${name.padEnd(52)}${median(ms).toFixed(0).padStart(7)}  [${Math.min(...ms).toFixed(0)}–${Math.max(...ms).toFixed(0)}]`,
    );
  }
  row('ratio per-rendition / hand', (perRendition / hand).toFixed(3));
  console.log(
    `load average (1/5/15 min): ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' / ')}`,
  );
  await mkdir(path.join(import.meta.dirname, 'results'), { recursive: true });
  await writeFile(
    path.join(import.meta.dirname, 'results', 'video-pipeline.json'),
    JSON.stringify(results, null, 2) + '\n',
  );
  console.log('\nwritten: bench/results/video-pipeline.json');
}

await main();
