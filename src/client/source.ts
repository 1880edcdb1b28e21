/** What an upload reads from: a size, a name, a type, and any byte range as a stream. */

export interface ByteSource {
  readonly size: number;
  readonly name: string;
  /** MIME type when the source knows it (a File does). */
  readonly type?: string;
  /** Bytes [start, end) as a stream; may be called many times (retries re-read). */
  stream(start: number, end: number): AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;
  /** Bytes [start, end) as a Blob, when the source is one (browser transports send Blobs). */
  blob?(start: number, end: number): Blob;
}

/** An incremental SHA-256. */
export interface Sha256 {
  update(chunk: Uint8Array): void;
  digest(): string;
}
export type Sha256Factory = () => Promise<Sha256>;

export function blobSource(blob: Blob, name?: string): ByteSource {
  const fileName = name ?? (typeof File !== 'undefined' && blob instanceof File ? blob.name : 'upload');
  return {
    size: blob.size,
    name: fileName,
    type: blob.type || undefined,
    stream: (start, end) => blob.slice(start, end).stream(),
    blob: (start, end) => blob.slice(start, end),
  };
}

/** Iterates a web ReadableStream or an async iterable alike. */
export async function* chunksOf(
  s: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  if (Symbol.asyncIterator in s) {
    yield* s;
    return;
  }
  const reader = s.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** SHA-256 of the whole source, read once as a stream (constant memory). */
export async function hashSource(
  source: ByteSource,
  create: Sha256Factory,
  opts: {
    signal?: AbortSignal;
    onBytes?: (done: number) => void;
    /** Hashing waits while paused. */
    gate?: { readonly paused: boolean; wait(signal?: AbortSignal): Promise<void> };
  } = {},
): Promise<string> {
  const h = await create();
  let done = 0;
  for await (const chunk of chunksOf(source.stream(0, source.size))) {
    opts.signal?.throwIfAborted();
    if (opts.gate?.paused) await opts.gate.wait(opts.signal);
    h.update(chunk);
    done += chunk.byteLength;
    opts.onBytes?.(done);
  }
  return h.digest();
}

const MIME_BY_EXT: Record<string, string> = {
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
  avif: 'image/avif',
  heic: 'image/heic',
  heif: 'image/heif',
  mp4: 'video/mp4',
  m4v: 'video/mp4',
  mov: 'video/quicktime',
  webm: 'video/webm',
  mkv: 'video/x-matroska',
};

/** The first `n` bytes of a source (fewer when it is shorter). */
export async function headOf(source: ByteSource, n = 64): Promise<Uint8Array> {
  const out = new Uint8Array(Math.min(n, source.size));
  let at = 0;
  for await (const chunk of chunksOf(source.stream(0, out.length))) {
    const take = chunk.subarray(0, out.length - at);
    out.set(take, at);
    at += take.length;
    if (at >= out.length) break;
  }
  return out.subarray(0, at);
}

const ascii = (b: Uint8Array, from: number, to: number) => String.fromCharCode(...b.subarray(from, to));
const startsWith = (b: Uint8Array, magic: number[], at = 0) => magic.every((x, i) => b[at + i] === x);

/**
 * The type the first bytes say, for the types the API accepts (a magic-number table, not a
 * parser: the server checks the bytes again); undefined when they say none of them.
 */
export function sniffMimeType(head: Uint8Array): string | undefined {
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (/^GIF8[79]a$/.test(ascii(head, 0, 6))) return 'image/gif';
  if (ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP') return 'image/webp';
  if (startsWith(head, [0x1a, 0x45, 0xdf, 0xa3])) {
    // EBML: the DocType tells WebM from other Matroska files.
    return ascii(head, 0, head.length).includes('webm') ? 'video/webm' : 'video/x-matroska';
  }
  if (ascii(head, 4, 8) === 'ftyp') {
    const boxEnd = Math.min(head.length, new DataView(head.buffer, head.byteOffset).getUint32(0));
    const brands = [ascii(head, 8, 12)];
    for (let i = 16; i + 4 <= boxEnd; i += 4) brands.push(ascii(head, i, i + 4));
    const has = (...b: string[]) => brands.some((x) => b.includes(x));
    if (has('avif', 'avis')) return 'image/avif';
    if (has('heic', 'heix', 'heim', 'heis', 'hevc', 'hevx')) return 'image/heic';
    if (has('mif1', 'msf1')) return 'image/heif';
    if (brands[0] === 'qt  ') return 'video/quicktime';
    return 'video/mp4';
  }
  return undefined;
}

/** MIME type from a file name's extension, for the types the API accepts; undefined otherwise. */
export function mimeTypeFor(fileName: string): string | undefined {
  const m = /\.([A-Za-z0-9]+)$/.exec(fileName);
  return m ? MIME_BY_EXT[m[1]!.toLowerCase()] : undefined;
}
