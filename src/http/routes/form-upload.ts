/**
 * One-request uploads for simple clients (the storage note's `FormData` POST): a
 * `multipart/form-data` body with the session's metadata fields and one file is a session, an
 * upload and a completion in one request. It is the same path as the three-step flow — the same
 * admission (types, sizes, quotas, idempotency), the bytes streamed straight into the store with
 * the same counting and hashing, the same verification at completion — only the client makes one
 * request. A failure after the session was opened cancels it, so nothing is left half-done.
 *
 * Fields must come before the file (browsers send FormData in the order it was built; curl in the
 * order of its -F options). `bytes` is the file's size: with it the file streams straight to the
 * store; without it, the size is unknown until the body ends, so the request is refused (411-like
 * 400) rather than buffered.
 */
import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { Value } from '@sinclair/typebox/value';
import type { Config } from '../../config.ts';
import { AppError } from '../../errors.ts';
import type { MultipartUploads } from '../../media/multipart.ts';
import type { MediaService } from '../../media/service.ts';
import type { Admission } from '../../processing/admission.ts';
import { admittedThen } from '../admission.ts';
import { perPrincipalRateLimit, principalOf, type registerAuth } from '../auth.ts';
import { withIdleTimeout } from '../idle-body.ts';
import { CreateSessionBody, errors, IdempotencyHeaders, MediaView, toMediaView } from '../schemas.ts';
import { logMediaId } from '../observability.ts';

export interface FormUploadDeps {
  media: MediaService;
  multipart: MultipartUploads;
  auth: ReturnType<typeof registerAuth>;
  config: Pick<Config, 'rateLimit' | 'uploads'>;
  admission?: Admission | undefined;
}

const checkFields = TypeCompiler.Compile(CreateSessionBody);
/** Field names a form may carry: the session's, plus `file` for the file itself. */
const FIELD_NAMES = new Set(Object.keys(CreateSessionBody.properties));
const MAX_FIELDS = FIELD_NAMES.size;

/** The form's text fields as the session body: `bytes` as a number, every other field a string. */
function sessionBody(fields: Record<string, string>) {
  const body: Record<string, unknown> = { ...fields };
  if (fields.bytes !== undefined && /^\d{1,16}$/.test(fields.bytes)) body.bytes = Number(fields.bytes);
  if (!checkFields.Check(body)) {
    const first = checkFields.Errors(body).First();
    const field = first?.path.replace(/^\//, '') || undefined;
    throw new AppError(
      'validation_failed',
      field
        ? `Form field "${field}": ${first!.message}.`
        : `The form fields are not valid: ${first?.message}.`,
      field ? { field } : undefined,
    );
  }
  return Value.Clone<typeof CreateSessionBody.static>(body);
}

export const formUploadRoute: FastifyPluginAsyncTypebox<FormUploadDeps> = async (
  app,
  { media, multipart: uploads, auth, config, admission },
) => {
  const maxFileBytes = Math.max(config.uploads.maxImageBytes, config.uploads.maxVideoBytes);
  await app.register(multipart, {
    limits: {
      fieldNameSize: 64,
      fieldSize: 4096,
      fields: MAX_FIELDS,
      files: 1,
      fileSize: maxFileBytes,
      parts: MAX_FIELDS + 1,
      headerPairs: 100,
    },
    // A part over a limit is an error we answer, not a silently truncated file.
    throwFileSizeLimit: true,
  });

  app.post(
    '/media/form',
    {
      onRequest: admittedThen(admission, auth.required),
      config: {
        rateLimit: perPrincipalRateLimit('sessions', config.rateLimit.sessionsPerMinute),
      },
      schema: {
        summary: 'Upload a file in one request (multipart/form-data): session, bytes and completion',
        description:
          'Fields first, then one file part named `file`. The fields are those of `POST /media` (`bytes` is required: the file streams straight to the store and is counted against it; `fileName` and `mimeType` default to the file part’s filename and Content-Type). Idempotent on `messageId` (devices) or the `Idempotency-Key` header (users), like `POST /media`. 201 with the media record (UPLOADED: processing follows), 200 for a replay.',
        tags: ['media'],
        operationId: 'uploadForm',
        headers: IdempotencyHeaders,
        consumes: ['multipart/form-data'],
        response: {
          200: MediaView,
          201: MediaView,
          ...errors(400, 401, 403, 404, 408, 409, 413, 415, 422, 429, 503, 507),
        },
      },
    },
    async (request, reply) => {
      if (!request.isMultipart()) {
        throw new AppError('unsupported_media_type', 'Send multipart/form-data (fields, then the file).');
      }
      const principal = principalOf(request);
      const fields: Record<string, string> = {};
      let done: Awaited<ReturnType<typeof media.complete>> | undefined;
      let created = false;
      try {
        for await (const part of request.parts()) {
          if (part.type === 'field') {
            if (done) throw new AppError('validation_failed', 'Send every field before the file.');
            if (!FIELD_NAMES.has(part.fieldname)) {
              throw new AppError('validation_failed', `Unknown form field "${part.fieldname}".`, {
                field: part.fieldname,
              });
            }
            if (typeof part.value !== 'string') {
              throw new AppError('validation_failed', `Form field "${part.fieldname}" must be text.`);
            }
            fields[part.fieldname] = part.value;
            continue;
          }
          if (part.fieldname !== 'file') {
            throw new AppError(
              'validation_failed',
              `The file part must be named "file", not "${part.fieldname}".`,
            );
          }
          if (done) throw new AppError('validation_failed', 'Send one file per request.');
          if (fields.bytes === undefined) {
            throw new AppError(
              'validation_failed',
              'Send the "bytes" field (the file size) before the file, so it can stream straight to the store.',
              { field: 'bytes' },
            );
          }
          const body = sessionBody({
            ...(part.filename ? { fileName: part.filename } : {}),
            ...(part.mimetype && part.mimetype !== 'application/octet-stream'
              ? { mimeType: part.mimetype }
              : {}),
            ...fields,
          });
          const session = await media.createSession(principal, body, request.headers['idempotency-key'], {
            bytesViaServer: true,
          });
          created = session.created;
          logMediaId(request, reply, session.media.id);
          if (session.media.status !== 'PENDING') {
            // A replay of a finished upload: its bytes are not needed again.
            part.file.resume();
            done = session.media;
            continue;
          }
          try {
            await media.receiveUpload(
              principal,
              session.media.id,
              withIdleTimeout(part.file, config.uploads.idleTimeoutSeconds * 1000),
              { contentType: body.mimeType, contentLength: body.bytes },
              { bytesViaServer: session.created },
            );
            if (part.file.truncated) throw new AppError('file_too_large');
            done = await media.complete(principal, session.media.id);
          } catch (err) {
            // Nothing half-done: the session this request opened ends (its object, if any, goes).
            if (session.created) {
              await uploads
                .cancel(await media.get(principal, session.media.id))
                .catch((e: unknown) => request.log.warn({ err: e }, 'cancelling a failed form upload'));
            }
            throw err;
          }
        }
      } catch (err) {
        throw translateFormError(err);
      }
      if (!done) throw new AppError('validation_failed', 'The form has no file part named "file".');
      void reply.status(created ? 201 : 200);
      return toMediaView(done, principal, await media.links(done, principal));
    },
  );
};

/** @fastify/multipart's own errors as ours (limits → 413, malformed bodies → 400). */
function translateFormError(err: unknown): unknown {
  if (err instanceof AppError) return err;
  const code = (err as { code?: string }).code ?? '';
  if (code === 'FST_REQ_FILE_TOO_LARGE') return new AppError('file_too_large');
  if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT' || code === 'FST_FIELDS_LIMIT') {
    return new AppError('body_too_large', 'Too many form parts: the fields of POST /media and one file.');
  }
  if (code === 'FST_INVALID_MULTIPART_CONTENT_TYPE' || code.startsWith('FST_')) {
    return new AppError('malformed_request', `The multipart body is not valid: ${(err as Error).message}`);
  }
  if (
    err instanceof Error &&
    /Unexpected end of (form|multipart data)|Malformed part header|boundary|Part terminated early/i.test(
      err.message,
    )
  ) {
    return new AppError('malformed_request', `The multipart body is not valid: ${err.message}`);
  }
  return err;
}
