/**
 * The GCS XML API calls the store makes itself (bytes in and out, multipart uploads), with the
 * store's credentials as a bearer token; the client library covers metadata, lists and the bucket.
 */
import type { Readable } from 'node:stream';
import { XMLParser } from 'fast-xml-parser';
import type { AuthClient, GoogleAuth } from 'google-auth-library';
import { AppError } from '../errors.ts';
import { StoreUnavailableError } from './errors.ts';

/** RFC 3986 encoding of each path segment ('/' kept), as Google's V4 canonical path. */
export const encodeKey = (key: string) =>
  key
    .split('/')
    .map((seg) =>
      encodeURIComponent(seg).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join('/');

export interface XmlCall {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE' | 'HEAD';
  /** Undefined for a bucket-level call. */
  key?: string | undefined;
  /** Query parameters; an empty value is sent bare (`?uploads`). */
  query?: Record<string, string> | undefined;
  headers?: Record<string, string> | undefined;
  body?: Buffer | string | Readable | undefined;
  /** Stream the response body (GET of an object); otherwise it is read as text. */
  stream?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

export interface XmlResponse {
  status: number;
  headers: Record<string, string>;
  /** Text unless the call asked for a stream. */
  text: string;
  stream: Readable | undefined;
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  isArray: (name) => name === 'Part' || name === 'Upload',
});

/** A parsed XML document (element → text or nested elements). */
export type XmlDoc = Record<string, unknown>;
export const parseXml = (text: string): XmlDoc => parser.parse(text) as XmlDoc;

/** A GCS XML error answer: its <Code>, or the status when it has none. */
export class GcsXmlError extends Error {
  override readonly name = 'GcsXmlError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`GCS ${status} ${code}: ${message}`);
  }
}

export function xmlError(res: XmlResponse): GcsXmlError {
  let code = '';
  let message = res.text.slice(0, 300);
  try {
    const err = parseXml(res.text)['Error'] as { Code?: string; Message?: string } | undefined;
    code = err?.Code ?? '';
    message = err?.Message ?? message;
  } catch {
    // not XML: keep the raw text
  }
  return new GcsXmlError(res.status, code || String(res.status), message);
}

/** Failures that mean "not now" (→ 503): no answer at all, 429 or a 5xx. */
export function unavailable(err: unknown): StoreUnavailableError | undefined {
  const e = err as { status?: unknown; code?: unknown; response?: { status?: unknown } };
  const status =
    typeof e.status === 'number'
      ? e.status
      : typeof e.code === 'number'
        ? e.code
        : typeof e.response?.status === 'number'
          ? e.response.status
          : undefined;
  if (status === 429 || (status !== undefined && status >= 500))
    return new StoreUnavailableError(`the object store answered ${status}`, { cause: err });
  return undefined;
}

export const isNotFoundStatus = (err: unknown) => {
  const e = err as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  return e.code === 404 || e.status === 404 || e.response?.status === 404;
};

export const uploadClosed = () => new AppError('invalid_state', 'The multipart upload is no longer open.');

/** CompleteMultipartUpload's refusals as the client's errors (the codes GCS shares with S3). */
export function completionError(err: GcsXmlError): unknown {
  if (err.code === 'InvalidPart')
    return new AppError('etag_mismatch', 'The store rejected a part: ETag mismatch.');
  if (err.code === 'InvalidPartOrder')
    return new AppError('invalid_part_number', 'Parts must be in ascending order.');
  if (err.code === 'EntityTooSmall')
    return new AppError('part_size_mismatch', 'A part other than the last is < 5 MiB.');
  if (err.status === 404) return uploadClosed();
  return unavailable(err) ?? err;
}

/** One XML API request, authenticated with the store's credentials. */
export async function xmlCall(
  auth: GoogleAuth<AuthClient>,
  endpoint: string,
  bucket: string,
  call: XmlCall,
): Promise<XmlResponse> {
  const query = Object.entries(call.query ?? {})
    .map(([k, v]) => (v === '' ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`))
    .join('&');
  const url = `${endpoint}/${bucket}${call.key !== undefined ? `/${encodeKey(call.key)}` : ''}${query ? `?${query}` : ''}`;
  try {
    const res = await auth.request<Readable | string>({
      url,
      method: call.method,
      headers: call.headers ?? {},
      ...(call.body !== undefined ? { data: call.body } : {}),
      responseType: call.stream ? 'stream' : 'text',
      validateStatus: () => true,
      ...(call.signal ? { signal: call.signal } : {}),
    });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers ?? {})) headers[k.toLowerCase()] = String(v);
    if (call.stream) {
      const stream = res.data as Readable;
      if (res.status >= 300) {
        let text = '';
        for await (const chunk of stream) text += String(chunk);
        return { status: res.status, headers, text, stream: undefined };
      }
      return { status: res.status, headers, text: '', stream };
    }
    return {
      status: res.status,
      headers,
      text: typeof res.data === 'string' ? res.data : '',
      stream: undefined,
    };
  } catch (err) {
    const e = err as { code?: unknown };
    // No HTTP answer (refused, reset, DNS): the store is unreachable.
    if (typeof e.code === 'string')
      throw new StoreUnavailableError('the object store is unreachable', { cause: err });
    throw err;
  }
}
