/**
 * The one table of error codes: code → HTTP status → default message.
 * Domain code throws `AppError`; the HTTP layer renders it as
 * `{ "error": { "code", "message", "details" } }`.
 */
export const ERRORS = {
  validation_failed: { status: 400, message: 'The request is not valid.' },
  invalid_json: { status: 400, message: 'The request body is not valid JSON.' },
  malformed_request: {
    status: 400,
    message: 'The request is not valid HTTP (request line, headers or framing).',
  },
  request_timeout: { status: 408, message: 'The request did not arrive in time.' },
  headers_too_large: {
    status: 431,
    message: 'The request line and headers are larger than the server accepts.',
  },
  invalid_cursor: { status: 400, message: 'The cursor is not valid.' },
  unsupported_media_type: { status: 415, message: 'This content type is not accepted here.' },
  mime_type_not_allowed: { status: 422, message: 'This file type is not allowed.' },
  media_type_mismatch: { status: 422, message: 'mediaType does not match mimeType.' },
  file_too_large: { status: 413, message: 'The file is larger than allowed.' },
  body_too_large: { status: 413, message: 'The request body is larger than allowed.' },
  upload_too_large: { status: 413, message: 'More bytes were sent than were declared.' },
  upload_incomplete: { status: 422, message: 'Fewer bytes arrived than were declared.' },
  upload_aborted: { status: 400, message: 'The upload was interrupted before all bytes arrived.' },
  checksum_mismatch: { status: 422, message: 'The bytes do not match the declared sha256.' },
  content_type_mismatch: { status: 400, message: 'Content-Type does not match the declared mimeType.' },
  type_mismatch: { status: 422, message: 'The file content does not match the declared type.' },
  webhook_target_refused: {
    status: 422,
    message: 'Webhooks are not sent to private, loopback or link-local addresses.',
  },
  object_missing: { status: 409, message: 'No uploaded object was found for this media yet.' },
  object_exists: {
    status: 409,
    message: 'Other bytes were already uploaded for this media; they are never replaced.',
  },
  archived: {
    status: 409,
    message:
      'The original is in archive storage; restore it first (details.restore names the request), then retry.',
  },
  upload_expired: { status: 410, message: 'The upload session has expired.' },
  upload_closed: {
    status: 410,
    message: 'The upload session is closed (cancelled or failed); create a new one.',
  },
  claim_expired: { status: 410, message: 'This device claim has expired or was completed already.' },
  idempotency_conflict: {
    status: 409,
    message: 'A request with this idempotency key declared a different file.',
  },
  invalid_state: { status: 409, message: 'The media is not in a state that allows this.' },
  media_not_attachable: {
    status: 409,
    message: 'Some media cannot go on this post (details.problems names each and why).',
  },
  version_conflict: { status: 409, message: 'The post changed since that version; read it again.' },
  not_multipart: { status: 409, message: 'This media is not a multipart upload.' },
  multipart_required: {
    status: 409,
    message: 'This media is a multipart upload: send its parts to the signed part URLs.',
  },
  invalid_part_number: { status: 400, message: 'A part number is outside 1..partCount.' },
  parts_incomplete: { status: 400, message: 'The parts list must name every part from 1 to partCount once.' },
  part_not_uploaded: { status: 409, message: 'Some parts have not been uploaded yet.' },
  etag_mismatch: { status: 409, message: 'An ETag does not match the stored part.' },
  part_size_mismatch: { status: 422, message: 'A stored part does not have the size the plan requires.' },
  upload_in_progress: { status: 409, message: 'Another request is completing this upload; retry shortly.' },
  upload_offset_mismatch: {
    status: 409,
    message: 'Upload-Offset is not the offset of the upload; ask HEAD for it and resume from there.',
  },
  upload_locked: { status: 423, message: 'Another request is writing to this upload; retry shortly.' },
  tus_version_unsupported: { status: 412, message: 'Send Tus-Resumable: 1.0.0 (the tus version served).' },
  tus_checksum_mismatch: {
    status: 460,
    message: 'The request body does not match its Upload-Checksum; nothing of it was kept.',
  },
  checksum_algorithm_unsupported: {
    status: 400,
    message: 'The Upload-Checksum algorithm is not supported (see Tus-Checksum-Algorithm).',
  },
  unauthorized: { status: 401, message: 'Missing or invalid credentials.' },
  signature_invalid: { status: 403, message: 'The URL signature is invalid.' },
  signature_expired: { status: 403, message: 'The signed URL has expired.' },
  forbidden: { status: 403, message: 'This principal may not do that.' },
  device_revoked: {
    status: 403,
    message: 'The device this media belongs to has been revoked; its upload is closed.',
  },
  not_found: { status: 404, message: 'Not found.' },
  method_not_allowed: { status: 405, message: 'Method not allowed.' },
  range_not_satisfiable: { status: 416, message: 'The requested range is not satisfiable.' },
  rate_limited: { status: 429, message: 'Too many requests.' },
  quota_exceeded: {
    status: 403,
    message: 'This upload would exceed your quota (details name the limit and current usage).',
  },
  service_unavailable: { status: 503, message: 'A dependency is unavailable; retry shortly.' },
  insufficient_storage: {
    status: 507,
    message: 'The server has no storage space left for this upload; retry later.',
  },
  internal: { status: 500, message: 'Internal error.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: Record<string, unknown>,
    readonly headers?: Record<string, string>,
  ) {
    super(message ?? ERRORS[code].message);
    this.name = 'AppError';
    this.status = ERRORS[code].status;
  }
}

/** Normalise any thrown value into an Error, keeping the original as `cause`. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : JSON.stringify(value), { cause: value });
}
