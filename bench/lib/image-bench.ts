/**
 * What bench/image-pipeline.ts and bench/image-steps.ts share: (a)'s raw sharp decode-once, the
 * CPU time of this run's own embedded Postgres (from /proc), and the uploads and completions that
 * feed the pipeline.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import sharp from 'sharp';
import type { Pool } from '../../src/db/pool.ts';
import { VARIANT_SIZES } from '../../src/processing/image-job.ts';
import { sha256 } from '../../test/helpers/files.ts';
import { call } from '../../test/helpers/server.ts';

const FIT = { fit: 'inside', withoutEnlargement: true } as const;

/**
 * (a): decode + orient + shrink to 1200 px into raw pixels, then the four WebP encodes from those
 * pixels (what the pipeline's sharp step does, without its placeholder, storage, database or queue).
 */
export async function rawDecodeOnce(input: Buffer): Promise<Buffer[]> {
  const largest = Math.max(...VARIANT_SIZES);
  const base = await sharp(input)
    .autoOrient()
    .resize(largest, largest, FIT)
    .raw()
    .toBuffer({ resolveWithObject: true });
  const raw = { raw: { width: base.info.width, height: base.info.height, channels: base.info.channels } };
  return Promise.all(
    VARIANT_SIZES.map((s) => sharp(base.data, raw).resize(s, s, FIT).webp({ quality: 80 }).toBuffer()),
  );
}

/** Postgres's CPU by process role (ms): `total` is the sum of the roles. */
export type PgCpu = Record<
  'total' | 'backends' | 'walwriter' | 'checkpointer' | 'autovacuum' | 'reaped' | 'other',
  number
>;

interface PgProc {
  pid: number;
  ppid: number;
  ticks: number;
  reaped: number;
}

/** The `postgres` processes on the machine, and which of them are this process's postmasters. */
function postgresProcesses(): { procs: PgProc[]; postmasters: Set<number> } {
  const procs: PgProc[] = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== 'postgres') continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.push({
        pid: Number(pid),
        ppid: Number(fields[1]),
        ticks: Number(fields[11]) + Number(fields[12]),
        reaped: Number(fields[13]) + Number(fields[14]),
      });
    } catch {
      // the process ended meanwhile
    }
  }
  return { procs, postmasters: new Set(procs.filter((p) => p.ppid === process.pid).map((p) => p.pid)) };
}

/**
 * CPU time (ms) used so far by this run's own Postgres: the embedded postmaster (a child of this
 * process) and its backends and helpers (its children), by role (from their process titles).
 * Other `postgres` processes on the machine (other test clusters) are not counted. /proc ticks of
 * 10 ms. `reaped`: what children that already exited used (autovacuum workers come and go), from
 * the postmaster's cumulative children time.
 */
export function postgresCpuMs(): PgCpu {
  const { procs, postmasters } = postgresProcesses();
  const out: PgCpu = {
    total: 0,
    backends: 0,
    walwriter: 0,
    checkpointer: 0,
    autovacuum: 0,
    reaped: 0,
    other: 0,
  };
  for (const p of procs) {
    if (postmasters.has(p.pid)) {
      out.other += p.ticks * 10;
      out.reaped += p.reaped * 10;
      continue;
    }
    if (!postmasters.has(p.ppid)) continue;
    let title = '';
    try {
      title = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    } catch {
      // the process ended meanwhile
    }
    const role = /\(\d+\)/.test(title)
      ? 'backends'
      : /walwriter/.test(title)
        ? 'walwriter'
        : /checkpointer/.test(title)
          ? 'checkpointer'
          : /autovacuum/.test(title)
            ? 'autovacuum'
            : 'other';
    out[role] += p.ticks * 10;
  }
  out.total = out.backends + out.walwriter + out.checkpointer + out.autovacuum + out.reaped + out.other;
  return out;
}

/** Time on CPU (ms, nanosecond precision) of one thread or single-threaded process so far. */
export function schedMs(pid: number, tid = pid): number {
  return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}

/**
 * The total of {@link postgresCpuMs} with nanosecond precision for the live processes (their
 * scheduler run time, /proc/PID/schedstat), for steps worth a few ms; children that exited meanwhile
 * still count in 10 ms ticks.
 */
export function postgresPreciseMs(): number {
  const { procs, postmasters } = postgresProcesses();
  let ms = 0;
  for (const p of procs) {
    if (!postmasters.has(p.pid) && !postmasters.has(p.ppid)) continue;
    try {
      ms += schedMs(p.pid);
    } catch {
      continue; // the process ended meanwhile
    }
    if (postmasters.has(p.pid)) ms += p.reaped * 10;
  }
  return ms;
}

/** Session + PUT for n uploads of `jpeg`; completing them (which enqueues) is left to the caller. */
export async function prepareUploads(
  api: (p: string) => string,
  auth: Record<string, string>,
  jpeg: Buffer,
  n: number,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = await call(api('/media'), {
      method: 'POST',
      headers: auth,
      json: { fileName: 'photo.jpg', mimeType: 'image/jpeg', bytes: jpeg.length, sha256: sha256(jpeg) },
    });
    if (s.status !== 201) throw new Error(s.text);
    const put = await call(s.body.upload.url, {
      method: 'PUT',
      headers: { 'content-type': 'image/jpeg' },
      body: jpeg,
    });
    if (put.status !== 200) throw new Error(put.text);
    ids.push(s.body.mediaId as string);
  }
  return ids;
}

/** Completes all ids at once (`POST /media/:id/complete`, all in parallel). */
export async function completeAll(
  api: (p: string) => string,
  auth: Record<string, string>,
  ids: string[],
): Promise<void> {
  const completes = await Promise.all(
    ids.map((id) => call(api(`/media/${id}/complete`), { method: 'POST', headers: auth })),
  );
  for (const c of completes) if (c.status !== 200) throw new Error(c.text);
}

/** The bench's status poll: how many of `ids` are READY or FAILED, and how many FAILED. */
export async function batchStatus(pool: Pool, ids: string[]): Promise<{ done: number; failed: number }> {
  const { rows } = await pool.query<{ done: number; failed: number }>(
    `SELECT count(*) FILTER (WHERE status IN ('READY', 'FAILED'))::int AS done,
            count(*) FILTER (WHERE status = 'FAILED')::int AS failed
     FROM media WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  return rows[0]!;
}

/**
 * Completes all ids at once (N enqueues) and waits for a running worker to finish them: one
 * status query per `pollMs` (`onPoll` after each). Returns enqueue → last READY in seconds, on the
 * database clock (no polling granularity in the figure).
 */
export async function completeAndWait(
  api: (p: string) => string,
  auth: Record<string, string>,
  pool: Pool,
  ids: string[],
  pollMs: number,
  onPoll: () => void = () => undefined,
): Promise<number> {
  await completeAll(api, auth, ids);
  for (;;) {
    const { done, failed } = await batchStatus(pool, ids);
    if (failed > 0) throw new Error('a bench image ended FAILED');
    onPoll();
    if (done === ids.length) break;
    await sleep(pollMs);
  }
  const { rows } = await pool.query<{ s: number }>(
    `SELECT extract(epoch FROM (SELECT max(processed_at) FROM media WHERE id = ANY($1::uuid[]))
                          - (SELECT min(created_on) FROM pgboss.job
                             WHERE name = 'media-process' AND data->>'mediaId' = ANY($1::text[])))::float8 AS s`,
    [ids],
  );
  return rows[0]!.s;
}
