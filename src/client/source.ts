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
  opts: { signal?: AbortSignal; onBytes?: (done: number) => void } = {},
): Promise<string> {
  const h = await create();
  let done = 0;
  for await (const chunk of chunksOf(source.stream(0, source.size))) {
    opts.signal?.throwIfAborted();
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

/** MIME type from a file name's extension, for the types the API accepts; undefined otherwise. */
export function mimeTypeFor(fileName: string): string | undefined {
  const m = /\.([A-Za-z0-9]+)$/.exec(fileName);
  return m ? MIME_BY_EXT[m[1]!.toLowerCase()] : undefined;
}
