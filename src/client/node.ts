/**
 * `mediary/client/node`: the SDK for Node ≥ 20. Uploads from a path, a stream or a Blob, sends
 * parts with node:http (real upload progress, exact Content-Length), hashes with node:crypto and
 * keeps resume state in files.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import {
  Agent as HttpAgent,
  request as httpRequest,
  type ClientRequest,
  type IncomingMessage,
} from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { UploadAbortedError } from './errors.ts';
import { blobSource, chunksOf, type ByteSource, type Sha256Factory } from './source.ts';
import type { StateStore, UploadState } from './state.ts';
import type { PutResponse, Transport } from './transport.ts';
import { PauseGate } from './pause.ts';
import {
  runUpload,
  withControls,
  type Platform,
  type UploadOptions,
  type UploadResult,
  type UploadTask,
} from './upload.ts';

export * from './common.ts';

export const nodeSha256: Sha256Factory = async () => {
  const h = createHash('sha256');
  return { update: (c) => void h.update(c), digest: () => h.digest('hex') };
};

/** A file on disk as a ByteSource; ranges are read straight from the file, never buffered whole. */
export async function fileSource(file: string | URL): Promise<ByteSource> {
  const p = typeof file === 'string' ? file : fileURLToPath(file);
  const s = await stat(p);
  if (!s.isFile()) throw new TypeError(`${p} is not a file`);
  return {
    size: s.size,
    name: path.basename(p),
    stream: (start, end) =>
      createReadStream(p, { start, end: Math.max(start, end - 1), highWaterMark: 256 * 1024 }),
  };
}

/** One JSON file per upload, written atomically (temp file + rename). */
export class FileStateStore implements StateStore {
  constructor(readonly dir: string = defaultStateDir()) {}

  private file(key: string) {
    return path.join(this.dir, `${createHash('sha256').update(key).digest('hex').slice(0, 40)}.json`);
  }

  async get(key: string): Promise<UploadState | undefined> {
    try {
      return JSON.parse(await readFile(this.file(key), 'utf8')) as UploadState;
    } catch {
      return undefined; // missing or torn: start afresh
    }
  }

  async put(key: string, state: UploadState): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const target = this.file(key);
    const tmp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(state));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
  }

  async delete(key: string): Promise<void> {
    const target = this.file(key);
    await rm(target, { force: true });
    // A process killed between writing a temp file and renaming it leaves `<target>.<hex>.tmp`.
    const prefix = `${path.basename(target)}.`;
    const names = await readdir(this.dir).catch(() => [] as string[]);
    await Promise.all(
      names
        .filter((n) => n.startsWith(prefix) && n.endsWith('.tmp'))
        .map((n) => rm(path.join(this.dir, n), { force: true })),
    );
  }
}

/** `$XDG_STATE_HOME/mediary/uploads`, else `~/.local/state/mediary/uploads`. */
export function defaultStateDir(): string {
  const base = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
  return path.join(base, 'mediary', 'uploads');
}

const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 64 });
const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 64 });
/** A connection that moves no bytes for this long is given up (and the part retried). */
const IDLE_TIMEOUT_MS = 60_000;

/** PUT with node:http(s): exact Content-Length, backpressure, progress as bytes are written. */
export const nodeTransport: Transport = (req) =>
  new Promise<PutResponse>((resolve, reject) => {
    const url = new URL(req.url);
    const isHttps = url.protocol === 'https:';
    const length = req.end - req.start;
    const headers: Record<string, string> = { ...req.headers, 'content-length': String(length) };
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      cleanup();
      reject(err);
    };
    const r = (isHttps ? httpsRequest : httpRequest)(url, {
      method: 'PUT',
      headers,
      agent: isHttps ? httpsAgent : httpAgent,
      timeout: IDLE_TIMEOUT_MS,
    });
    const onAbort = () => {
      const err = new UploadAbortedError(undefined, { cause: req.signal?.reason });
      r.destroy(err);
      fail(err);
    };
    const cleanup = () => req.signal?.removeEventListener('abort', onAbort);
    if (req.signal?.aborted) return onAbort();
    req.signal?.addEventListener('abort', onAbort, { once: true });
    r.on('timeout', () => r.destroy(new Error(`no progress for ${IDLE_TIMEOUT_MS} ms`)));
    r.on('error', (err) => fail(err));
    r.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => fail(err));
      res.on('end', () => {
        if (settled) return;
        settled = true;
        cleanup();
        resolve({
          status: res.statusCode ?? 0,
          header: (name) => {
            const v = res.headers[name.toLowerCase()];
            return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
          },
          text: Buffer.concat(chunks).toString('utf8'),
        });
      });
    });
    // Write the range with backpressure; count bytes as the socket takes them.
    void (async () => {
      let sent = 0;
      try {
        for await (const chunk of chunksOf(req.source.stream(req.start, req.end))) {
          if (settled) return;
          const ok = r.write(chunk);
          sent += chunk.byteLength;
          req.onProgress?.(sent);
          if (!ok) await drained(r);
        }
        r.end();
      } catch (err) {
        r.destroy(err instanceof Error ? err : new Error(String(err)));
      }
    })();
  });

function drained(r: ClientRequest): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      r.off('drain', done);
      r.off('close', done);
      resolve();
    };
    r.on('drain', done);
    r.on('close', done);
  });
}

export const nodePlatform: Platform = {
  transport: nodeTransport,
  sha256: nodeSha256,
  defaultStateStore: () => new FileStateStore(),
};

const isByteSource = (x: unknown): x is ByteSource =>
  typeof x === 'object' && x !== null && 'stream' in x && 'size' in x && !(x instanceof Blob);

export type NodeUploadInput = string | URL | Blob | ByteSource | Readable | ReadableStream<Uint8Array>;

/**
 * Uploads a file path, a Blob, or a stream. A stream is first spooled to a temporary file (so
 * parts can be re-read on retry and the sha256 declared up front), then uploaded from there.
 * The returned promise also has `pause()` and `resume()`.
 */
export function uploadFile(input: NodeUploadInput, options: UploadOptions): UploadTask {
  const gate = new PauseGate();
  return withControls(upload(input, options, gate), gate);
}

async function upload(
  input: NodeUploadInput,
  options: UploadOptions,
  gate: PauseGate,
): Promise<UploadResult> {
  if (typeof input === 'string' || input instanceof URL) {
    return runUpload(await fileSource(input), options, nodePlatform, gate);
  }
  if (input instanceof Blob) {
    return runUpload(blobSource(input, options.fileName), options, nodePlatform, gate);
  }
  if (isByteSource(input)) return runUpload(input, options, nodePlatform, gate);
  const dir = path.join(os.tmpdir(), `mediary-spool-${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { recursive: true });
  const tmp = path.join(dir, options.fileName ?? 'upload');
  try {
    const readable = input instanceof Readable ? input : Readable.fromWeb(input as never);
    await pipeline(readable, createWriteStream(tmp), { signal: options.signal });
    return await runUpload(await fileSource(tmp), options, nodePlatform, gate);
  } finally {
    await unlink(tmp).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}
