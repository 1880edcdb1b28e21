import { STATUS_CODES } from 'node:http';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isDatabaseUnavailable, isDataException, isTransactionConflict } from '../db/pool.ts';
import { AppError, ERRORS, type ErrorCode } from '../errors.ts';
import { ObjectArchivedError } from '../storage/archive.ts';
import { isStorageFull, isStoreUnavailable } from '../storage/errors.ts';

interface Rendered {
  status: number;
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown> | undefined;
  headers?: Record<string, string> | undefined;
  /** Logged with the rejection (never sent): what the client cannot see but an operator needs. */
  log?: Record<string, unknown>;
}

/** Sent with every answer (the `onSend` hook, and the answers that bypass hooks). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; sandbox",
  'referrer-policy': 'no-referrer',
};

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_BODY_TOO_LARGE: 'body_too_large',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_JSON_BODY: 'invalid_json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'validation_failed',
  FST_ERR_CTP_EMPTY_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_TYPE: 'unsupported_media_type',
};

function render(err: unknown): Rendered {
  if (err instanceof AppError) {
    return {
      status: err.status,
      code: err.code,
      message: err.message,
      details: err.details,
      headers: err.headers,
    };
  }
  const fe = err as Partial<FastifyError> & { validation?: unknown[]; validationContext?: string };
  if (Array.isArray(fe.validation)) {
    return {
      status: 400,
      code: 'validation_failed',
      message: fe.message ?? ERRORS.validation_failed.message,
      details: {
        in: fe.validationContext,
        issues: fe.validation.map((v) => {
          const i = v as { instancePath?: string; message?: string; keyword?: string; params?: unknown };
          return { path: i.instancePath, message: i.message, keyword: i.keyword, params: i.params };
        }),
      },
    };
  }
  if (typeof fe.code === 'string' && fe.code in FASTIFY_CODES) {
    const code = FASTIFY_CODES[fe.code]!;
    return { status: ERRORS[code].status, code, message: fe.message ?? ERRORS[code].message };
  }
  if (err instanceof SyntaxError && fe.statusCode === 400) {
    return {
      status: 400,
      code: 'invalid_json',
      message: `The request body is not valid JSON: ${err.message}`,
    };
  }
  if (fe.statusCode === 429) {
    return { status: 429, code: 'rate_limited', message: fe.message ?? ERRORS.rate_limited.message };
  }
  // An archived object the use case did not name (a rule of the operator's archived a variant,
  // say): still the client's 409, not a 500. Originals get their restore action (media/archive.ts).
  if (err instanceof ObjectArchivedError) {
    return { status: 409, code: 'archived', message: 'The object is in archive storage.' };
  }
  if (isStorageFull(err)) {
    return {
      status: 507,
      code: 'insufficient_storage',
      message: ERRORS.insufficient_storage.message,
      headers: { 'retry-after': '60' },
    };
  }
  if (isDatabaseUnavailable(err)) {
    return {
      status: 503,
      code: 'service_unavailable',
      message: ERRORS.service_unavailable.message,
      headers: { 'retry-after': '2' },
    };
  }
  if (isTransactionConflict(err)) {
    return {
      status: 503,
      code: 'service_unavailable',
      message: 'Another request changed the same records at the same moment; nothing was changed, retry.',
      headers: { 'retry-after': '1' },
      log: { pgCode: (err as { code: string }).code },
    };
  }
  if (isDataException(err)) {
    return {
      status: 400,
      code: 'validation_failed',
      message: 'A value in the request is out of range or not storable text.',
      log: { pgCode: (err as { code: string }).code, pgMessage: (err as Error).message },
    };
  }
  // The object store down, restarting, hung or answering 5xx (S3 SDK errors and timeouts).
  if (isStoreUnavailable(err)) {
    return {
      status: 503,
      code: 'service_unavailable',
      message: 'The object store is not reachable right now; retry shortly.',
      headers: { 'retry-after': '5' },
    };
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { status: fe.statusCode, code: 'validation_failed', message: fe.message ?? 'Bad request.' };
  }
  return { status: 500, code: 'internal', message: ERRORS.internal.message };
}

/**
 * A failure of ours (full disk, database or store unavailable): when it ends an upload midway,
 * the request body is destroyed too, which must not be reported as the client going away.
 */
export function isServerFault(err: unknown): boolean {
  return isStorageFull(err) || isDatabaseUnavailable(err) || isStoreUnavailable(err);
}

/** The one error handler: every failure becomes `{ error: { code, message, details } }`. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err, request, reply) => {
    // Node's "aborted" (ECONNRESET) is the client hanging up mid-body, not the database's ECONNRESET.
    const clientAborted =
      (err as { code?: unknown }).code === 'ECONNRESET' &&
      (err as { message?: unknown }).message === 'aborted' &&
      !request.raw.complete;
    const r: Rendered = clientAborted
      ? { status: 400, code: 'upload_aborted', message: ERRORS.upload_aborted.message }
      : render(err);
    if (r.status >= 500) request.log.error({ err, ...r.log }, 'request failed');
    else request.log.warn({ code: r.code, msg: r.message, ...r.log }, 'request rejected');
    if (r.headers) void reply.headers(r.headers);
    return reply.status(r.status).send({
      error: {
        code: r.code,
        message: r.message,
        ...(r.details ? { details: r.details } : {}),
        requestId: request.id,
      },
    });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.status(404).send({
      error: {
        code: 'not_found',
        message: `No route for ${request.method} ${request.url.split('?')[0]}.`,
        requestId: request.id,
      },
    }),
  );
}

/**
 * Fastify's `frameworkErrors`: errors raised before routing (a path whose percent-encoding does
 * not decode, a path parameter over the router's length limit). Fastify answers them without
 * hooks or the error handler, so the shape and the security headers are given here.
 */
export function frameworkErrors(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const message =
    err.code === 'FST_ERR_BAD_URL'
      ? 'The URL path is not valid percent-encoding.'
      : err.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? 'A path segment of the URL is longer than allowed.'
        : ERRORS.validation_failed.message;
  request.log.warn({ code: 'validation_failed', reason: err.code }, 'request rejected');
  void reply
    .status(ERRORS.validation_failed.status)
    .headers(SECURITY_HEADERS)
    .send({ error: { code: 'validation_failed', message, requestId: request.id } });
}

/**
 * The answer to a request Node's HTTP parser refused (bad framing such as `Content-Length: -1`, an
 * oversized head, a timeout): such requests never reach a route or the error handler, and get the
 * same JSON error shape here, with nosniff, closing the connection (the parser cannot go on). Sent
 * by linger.ts's `clientErrorHandler`.
 */
export function clientErrorResponse(err: { code?: string | undefined }): string {
  const code: ErrorCode =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? 'headers_too_large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? 'request_timeout'
        : 'malformed_request';
  const { status, message } = ERRORS[code];
  const body = JSON.stringify({ error: { code, message } });
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    Object.entries(SECURITY_HEADERS)
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('') +
    `Connection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}
