/**
 * What the curl benches share (bench/curl-upload.ts, bench/curl-gc.ts): the file `curl -T` sends,
 * curl itself, Mediary's session / PUT + complete / delete steps as a client outside the process
 * sends them, and the raw durable sink (bench/lib/durable-sink.ts) they are measured against.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { fakeMp4 } from '../../test/helpers/process.ts';
import { freePort } from '../../test/helpers/server.ts';
import { MiB, startHelper } from './common.ts';

const run = promisify(execFile);

/** Writes `bytes` of a repeated MP4 pattern to `file`; resolves with its sha256 (hex). */
export async function writeSourceFile(file: string, bytes: number): Promise<string> {
  const chunk = fakeMp4(16 * MiB);
  const hash = createHash('sha256');
  const fh = await open(file, 'w');
  try {
    for (let sent = 0; sent < bytes; sent += chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, bytes - sent));
      hash.update(part);
      await fh.write(part);
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

export type Curl = (args: string[]) => Promise<{ status: number; body: string }>;

/** curl with its defaults, one request per call; bodies go through a file under `dir`. */
export function curlIn(dir: string): Curl {
  return async (args) => {
    const out = path.join(dir, `curl-${process.hrtime.bigint()}.out`);
    const { stdout } = await run('curl', ['-sS', '-o', out, '-w', '%{http_code}', ...args], {
      maxBuffer: 1024 * 1024,
    });
    const body = await readFile(out, 'utf8').catch(() => '');
    await rm(out, { force: true });
    return { status: Number(stdout.trim()), body };
  };
}

/** One service as curl reaches it: its API and a device's `Authorization` value. */
export interface CurlTarget {
  api: (p: string) => string;
  authorization: string;
  /** Named in errors. */
  label: string;
}

/** The file's upload session (POST /media with its size and sha256). */
export async function openSession(
  curl: Curl,
  to: CurlTarget,
  file: { bytes: number; sha256: string },
): Promise<{ mediaId: string; upload: { url: string } }> {
  const created = await curl([
    ...['-X', 'POST', '-H', `authorization: ${to.authorization}`],
    ...['-H', 'content-type: application/json', '--data'],
    JSON.stringify({ fileName: 'big.mp4', mimeType: 'video/mp4', bytes: file.bytes, sha256: file.sha256 }),
    to.api('/media'),
  ]);
  if (created.status !== 201) throw new Error(`${to.label} session: ${created.status} ${created.body}`);
  return JSON.parse(created.body) as { mediaId: string; upload: { url: string } };
}

/** `curl -T source` to the session's upload URL, then complete: the part the benches time. */
export async function putAndComplete(
  curl: Curl,
  to: CurlTarget,
  session: { mediaId: string; upload: { url: string } },
  source: string,
): Promise<void> {
  const put = await curl(['-T', source, '-H', 'content-type: video/mp4', session.upload.url]);
  if (put.status !== 200) throw new Error(`${to.label} PUT: ${put.status} ${put.body}`);
  const done = await curl([
    ...['-X', 'POST', '-H', `authorization: ${to.authorization}`],
    to.api(`/media/${session.mediaId}/complete`),
  ]);
  if (done.status !== 200) throw new Error(`${to.label} complete: ${done.status} ${done.body}`);
}

/** Deletes the uploaded media (so the next round starts from the same store). */
export async function deleteMedia(curl: Curl, to: CurlTarget, mediaId: string): Promise<void> {
  const del = await curl([
    ...['-X', 'DELETE', '-H', `authorization: ${to.authorization}`],
    to.api(`/media/${mediaId}`),
  ]);
  if (del.status !== 204) throw new Error(`${to.label} DELETE: ${del.status} ${del.body}`);
}

/**
 * The raw durable sink (new file, sha256, fsync of file and directory) in its own process, under
 * `dir`; `upload()` sends `source` with `curl -T`, checks the sha256 the sink computed, removes the
 * file and resolves with the seconds it took.
 */
export async function startDurableSink(
  curl: Curl,
  dir: string,
  source: { file: string; sha256: string },
): Promise<{ upload(): Promise<number>; stop(): Promise<void> }> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const helper = await startHelper('durable-sink.ts', [String(port), dir]);
  return {
    async upload() {
      const t0 = performance.now();
      const r = await curl(['-T', source.file, '-H', 'content-type: video/mp4', `http://127.0.0.1:${port}/`]);
      const seconds = (performance.now() - t0) / 1000;
      const body = JSON.parse(r.body) as { file: string; sha256: string };
      if (r.status !== 200 || body.sha256 !== source.sha256) throw new Error(`sink: ${r.status} ${r.body}`);
      await rm(body.file);
      return seconds;
    },
    stop: () => helper.stop(),
  };
}
