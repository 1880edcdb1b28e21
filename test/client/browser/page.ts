/**
 * The browser test page's script (bundled by esbuild from the SDK's browser entry): makes a File,
 * uploads it with `mediary/client`, and reports what happened to the Node side via Playwright.
 */
import {
  MediaryClient,
  MediaryError,
  uploadFile,
  type Progress,
  type UploadState,
} from '../../../src/client/index.ts';

/** Deterministic bytes that sniff as MP4: an `ftyp` box, then xorshift32 noise from `seed`. */
export function fileBytes(size: number, seed: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  const head = [0, 0, 0, 0x18, ...'ftypisom'.split('').map((c) => c.charCodeAt(0)), 0, 0, 2, 0];
  head.push(...'isomiso2'.split('').map((c) => c.charCodeAt(0)));
  out.set(head.slice(0, size));
  let x = seed >>> 0 || 1;
  for (let i = head.length; i < size; i++) {
    if ((i - head.length) % 4 === 0) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
    }
    out[i] = (x >>> (((i - head.length) % 4) * 8)) & 0xff;
  }
  return out;
}

export interface RunOptions {
  server: string;
  key: string;
  size: number;
  seed: number;
  name: string;
  concurrency?: number;
  /** Abort (the caller's AbortSignal) once this many parts are done. */
  abortAfterParts?: number;
  /** Retries after a failed attempt (the SDK's default: 6). */
  retries?: number;
}

export interface RunOutcome {
  ok: boolean;
  error?: { name: string; message: string; status?: number; code?: string };
  result?: {
    mediaId: string;
    status: string;
    sha256: string;
    multipart: boolean;
    created: boolean;
    partsSent: number;
    partsSkipped: number;
  };
  events: Progress[];
  /** SHA-256 of the same bytes by WebCrypto (one shot), to check hash-wasm's streaming digest. */
  webSha256: string;
}

async function webSha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
}

async function run(o: RunOptions): Promise<RunOutcome> {
  const bytes = fileBytes(o.size, o.seed);
  const file = new File([bytes], o.name, { type: 'video/mp4' });
  const events: Progress[] = [];
  const ac = new AbortController();
  const web = await webSha256(bytes);
  try {
    const r = await uploadFile(file, {
      server: o.server,
      key: o.key,
      concurrency: o.concurrency,
      signal: ac.signal,
      retry: { baseDelayMs: 50, maxDelayMs: 500, retries: o.retries },
      onProgress: (p) => {
        events.push(p);
        if (o.abortAfterParts !== undefined && p.partsDone >= o.abortAfterParts) ac.abort();
      },
    });
    const { mediaId, status, sha256, multipart, created, partsSent, partsSkipped } = r;
    return {
      ok: true,
      result: { mediaId, status, sha256, multipart, created, partsSent, partsSkipped },
      events,
      webSha256: web,
    };
  } catch (err) {
    return { ok: false, error: describeError(err), events, webSha256: web };
  }
}

function describeError(err: unknown): NonNullable<RunOutcome['error']> {
  const e = err instanceof Error ? err : new Error(String(err));
  const http = e instanceof MediaryError ? { status: e.status, code: e.code } : {};
  return { name: e.name, message: e.message, ...http };
}

export interface ReadBackOptions {
  server: string;
  key: string;
  mediaId: string;
  /** A `Range` header value; the answer's `Content-Range` is reported. */
  range?: string;
}

export interface ReadBackOutcome {
  ok: boolean;
  error?: NonNullable<RunOutcome['error']>;
  status?: number;
  /** SHA-256 of the body (WebCrypto). */
  sha256?: string;
  bytes?: number;
  /** Response headers as this page can read them (null: not exposed to the page). */
  headers?: Record<string, string | null>;
}

/** Downloads a media's bytes through the API (`MediaryClient.download`, proxied). */
async function readBack(o: ReadBackOptions): Promise<ReadBackOutcome> {
  const client = new MediaryClient({ server: o.server, key: o.key, retry: { retries: 0 } });
  try {
    const res = await client.download(o.mediaId, { range: o.range });
    const body = new Uint8Array(await res.arrayBuffer());
    const names = ['etag', 'content-disposition', 'accept-ranges', 'content-range', 'content-type'];
    return {
      ok: true,
      status: res.status,
      sha256: await webSha256(body),
      bytes: body.length,
      headers: Object.fromEntries(names.map((n) => [n, res.headers.get(n)])),
    };
  } catch (err) {
    return { ok: false, error: describeError(err) };
  }
}

/** Every resume state the SDK keeps in IndexedDB (its database and object store). */
function states(): Promise<{ key: string; state: UploadState }[]> {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open('mediary-uploads', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('uploads');
    open.onerror = () => reject(open.error ?? new Error('cannot open IndexedDB'));
    open.onsuccess = () => {
      const db = open.result;
      const store = db.transaction('uploads', 'readonly').objectStore('uploads');
      const keys = store.getAllKeys();
      const values = store.getAll();
      values.onerror = () => reject(values.error ?? new Error('IndexedDB read failed'));
      values.onsuccess = () => {
        const out = keys.result.map((k, i) => ({
          key: typeof k === 'string' ? k : JSON.stringify(k),
          state: values.result[i] as UploadState,
        }));
        db.close();
        resolve(out);
      };
    };
  });
}

let current: Promise<RunOutcome> | undefined;
Object.assign(globalThis, {
  mediaryTest: {
    run,
    readBack,
    states,
    /** Starts an upload without waiting (to reload the page under it). */
    start: (o: RunOptions) => {
      current = run(o);
    },
    current: () => current,
  },
});
