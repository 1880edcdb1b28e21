import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import type { OpenableObject } from '../storage/types.ts';

/** Stored bytes (a delivery plan's `stream`) with the caching the route chose. */
export interface ServedObject extends OpenableObject {
  cacheControl: string;
}

/** Parses a single `bytes=` range (RFC 9110). Undefined → serve the whole object; 'unsatisfiable' → 416. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined; // multiple or malformed ranges: ignore, send all
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

function etagMatches(header: string, etag: string): boolean {
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etag);
}

/** Streams an object with validators, conditional requests and single byte ranges. */
export async function sendObject(request: FastifyRequest, reply: FastifyReply, obj: ServedObject) {
  const ifRange = request.headers['if-range'];
  const rangeAllowed = ifRange === undefined || ifRange === obj.etag;
  const range = rangeAllowed ? parseRange(request.headers.range, obj.size) : undefined;
  if (range === 'unsatisfiable') {
    throw new AppError(
      'range_not_satisfiable',
      undefined,
      { size: obj.size, range: request.headers.range },
      { 'content-range': `bytes */${obj.size}` },
    );
  }
  void reply.headers({
    'accept-ranges': 'bytes',
    etag: obj.etag,
    'last-modified': obj.lastModified.toUTCString(),
    'cache-control': obj.cacheControl,
  });
  const inm = request.headers['if-none-match'];
  if (inm !== undefined && etagMatches(inm, obj.etag)) return reply.status(304).send();

  const stream = await obj.open(range);
  if (!stream) throw new AppError('not_found', 'The stored object is missing.');
  void reply.headers({ 'content-type': obj.contentType, 'content-disposition': obj.contentDisposition });
  if (range) {
    void reply
      .status(206)
      .header('content-range', `bytes ${range.start}-${range.end}/${obj.size}`)
      .header('content-length', String(range.end - range.start + 1));
  } else {
    void reply.status(200).header('content-length', String(obj.size));
  }
  return reply.send(stream);
}
