/** Sending one byte range to a (signed) URL: the part of an upload that differs per platform. */
import { UploadAbortedError } from './errors.ts';
import type { ByteSource } from './source.ts';

export interface PutRequest {
  url: string;
  headers: Record<string, string>;
  source: ByteSource;
  start: number;
  end: number;
  signal?: AbortSignal;
  /** Bytes of this range sent so far in this attempt. */
  onProgress?: (sent: number) => void;
}

export interface PutResponse {
  status: number;
  header(name: string): string | null;
  text: string;
}

/** Sends the range; resolves with any HTTP answer, rejects on network failure or abort. */
export type Transport = (req: PutRequest) => Promise<PutResponse>;

/**
 * Browser transport: XMLHttpRequest when present (it reports upload progress; fetch cannot),
 * else fetch (progress jumps when the request ends). Needs a source that can give Blobs.
 * A store or API on another origin must expose the `ETag` header through CORS (the bucket's
 * S3_CORS_ORIGINS, the API's CORS_ORIGINS).
 */
export const browserTransport: Transport = (req) => {
  if (!req.source.blob) throw new TypeError('browserTransport needs a Blob-backed source');
  const body = req.source.blob(req.start, req.end);
  if (typeof XMLHttpRequest !== 'undefined') return xhrPut(req, body);
  return fetchPut(req, body);
};

async function fetchPut(req: PutRequest, body: Blob): Promise<PutResponse> {
  try {
    const res = await fetch(req.url, { method: 'PUT', headers: req.headers, body, signal: req.signal });
    const text = await res.text();
    if (res.ok) req.onProgress?.(req.end - req.start);
    return { status: res.status, header: (n) => res.headers.get(n), text };
  } catch (err) {
    if (req.signal?.aborted) throw new UploadAbortedError(undefined, { cause: err });
    throw err;
  }
}

function xhrPut(req: PutRequest, body: Blob): Promise<PutResponse> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', req.url);
    for (const [k, v] of Object.entries(req.headers)) {
      // The browser sets Content-Length itself and refuses to let scripts set it.
      if (k.toLowerCase() !== 'content-length') xhr.setRequestHeader(k, v);
    }
    xhr.upload.onprogress = (e) => req.onProgress?.(e.loaded);
    xhr.onload = () =>
      resolve({ status: xhr.status, header: (n) => xhr.getResponseHeader(n), text: xhr.responseText });
    xhr.onerror = () => reject(new TypeError(`network error sending ${req.end - req.start} bytes`));
    xhr.ontimeout = () => reject(new TypeError('upload timed out'));
    const onAbort = () => xhr.abort();
    xhr.onabort = () => reject(new UploadAbortedError());
    req.signal?.addEventListener('abort', onAbort, { once: true });
    xhr.onloadend = () => req.signal?.removeEventListener('abort', onAbort);
    xhr.send(body);
  });
}
