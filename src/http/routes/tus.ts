/**
 * tus 1.0 (https://tus.io/protocols/resumable-upload) at `/api/v1/tus/`: core, creation,
 * creation-with-upload, termination, expiration, checksum. A header-based protocol: the bodies are
 * bytes or empty, the state travels in `Upload-*` headers; errors are our JSON shape with the
 * status tus names (409 offset, 412 version, 413 size, 460 checksum, 404, 410). The upload URL is
 * `/api/v1/tus/{mediaId}`: a tus upload is a media session like any other.
 */
import type { Readable } from 'node:stream';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config.ts';
import { AppError } from '../../errors.ts';
import {
  TUS_CHECKSUM_ALGORITHMS,
  TUS_EXTENSIONS,
  TUS_VERSION,
  type TusState,
  type TusUploads,
} from '../../media/tus.ts';
import type { Admission } from '../../processing/admission.ts';
import { admittedThen } from '../admission.ts';
import { perPrincipalRateLimit, principalOf, type registerAuth } from '../auth.ts';
import { isServerFault } from '../errors.ts';
import { withIdleTimeout } from '../idle-body.ts';
import { CreateSessionBody, errors, MediaIdParams, PUBLIC } from '../schemas.ts';
import { apiPath, ROUTES } from '../urls.ts';

export interface TusRouteDeps {
  tus: TusUploads;
  auth: ReturnType<typeof registerAuth>;
  config: Pick<Config, 'rateLimit' | 'uploads' | 'publicUrl'>;
  /** Admission control of new upload sessions (creation only: PATCHes of open uploads go on). */
  admission?: Admission | undefined;
}

export const TUS_CONTENT_TYPE = 'application/offset+octet-stream';
/** Request headers tus clients send (CORS allows them). */
export const TUS_REQUEST_HEADERS = [
  'Tus-Resumable',
  'Upload-Length',
  'Upload-Offset',
  'Upload-Metadata',
  'Upload-Checksum',
  'Upload-Defer-Length',
];
/** Response headers tus clients read (CORS exposes them). */
export const TUS_RESPONSE_HEADERS = [
  'Tus-Resumable',
  'Tus-Version',
  'Tus-Extension',
  'Tus-Max-Size',
  'Tus-Checksum-Algorithm',
  'Upload-Offset',
  'Upload-Length',
  'Upload-Metadata',
  'Upload-Expires',
];

const headerDoc = (description: string) => ({ type: 'string', description });
const STATE_HEADERS = {
  'Tus-Resumable': headerDoc('1.0.0'),
  'Upload-Offset': headerDoc('Bytes received and made durable.'),
  'Upload-Expires': headerDoc('When the session expires (RFC 9110 date); then 410.'),
};
const noBody = (description: string, headers: Record<string, unknown>) => Type.Null({ description, headers });

const Digits = Type.String({ pattern: '^\\d{1,16}$' });
const TusResumable = Type.Optional(
  Type.String({ description: 'Must be `1.0.0` (412 otherwise, with `Tus-Version`).' }),
);
const IdleHeaders = {
  'tus-resumable': TusResumable,
};

/** `Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent). */
export function parseUploadMetadata(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (header === undefined || header.trim() === '') return out;
  for (const pair of header.split(',')) {
    const [key, value, extra] = pair.trim().split(' ');
    if (!key || extra !== undefined || !/^[\x21-\x7e]+$/.test(key) || out.has(key)) {
      throw new AppError(
        'validation_failed',
        'Upload-Metadata must be "key base64value" pairs, each key once.',
        {
          header: 'upload-metadata',
        },
      );
    }
    if (value !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
      throw new AppError('validation_failed', `Upload-Metadata value of "${key}" is not base64.`, {
        header: 'upload-metadata',
        key,
      });
    }
    out.set(key, value === undefined ? '' : Buffer.from(value, 'base64').toString('utf8'));
  }
  return out;
}

/** Upload-Metadata keys that are session fields (tus clients' own keys are ignored). */
const SESSION_FIELDS = [
  'sha256',
  'mediaType',
  'deviceId',
  'cameraId',
  'capturedAt',
  'reason',
  'messageId',
  'purpose',
  'circleId',
] as const;

function sessionInput(length: number, meta: Map<string, string>): Record<string, unknown> {
  const input: Record<string, unknown> = {
    // tus-js-client and Uppy send `filename`/`filetype`; Uppy also `name`/`type`.
    fileName: meta.get('filename') ?? meta.get('name') ?? 'upload',
    bytes: length,
  };
  const type = meta.get('filetype') ?? meta.get('type');
  if (type === undefined || type === '') {
    throw new AppError('validation_failed', 'Upload-Metadata must name the file type (filetype).', {
      header: 'upload-metadata',
      key: 'filetype',
    });
  }
  input.mimeType = type;
  for (const field of SESSION_FIELDS) {
    const v = meta.get(field);
    if (v !== undefined) input[field] = v;
  }
  return input;
}

function parseChecksum(header: string | string[] | undefined) {
  if (header === undefined) return undefined;
  if (Array.isArray(header)) throw new AppError('validation_failed', 'Send one Upload-Checksum.');
  const [algorithm, digest, extra] = header.trim().split(' ');
  if (!algorithm || !digest || extra !== undefined || !/^[A-Za-z0-9+/]+={0,2}$/.test(digest)) {
    throw new AppError('validation_failed', 'Upload-Checksum must be "<algorithm> <base64 digest>".', {
      header: 'upload-checksum',
    });
  }
  return { algorithm: algorithm.toLowerCase(), digest: Buffer.from(digest, 'base64') };
}

export const tusRoutes: FastifyPluginAsyncTypebox<TusRouteDeps> = async (
  app,
  { tus, auth, config, admission },
) => {
  // Bodies are read by the handlers as streams; their content type is checked there.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  const maxSize = Math.max(config.uploads.maxImageBytes, config.uploads.maxVideoBytes);
  const discovery = {
    'tus-version': TUS_VERSION,
    'tus-extension': TUS_EXTENSIONS.join(','),
    'tus-max-size': String(maxSize),
    'tus-checksum-algorithm': TUS_CHECKSUM_ALGORITHMS.join(','),
  };
  // Every answer says which version it speaks; a request in another version is refused first.
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('tus-resumable', TUS_VERSION);
    if (request.method === 'OPTIONS') {
      void reply.headers(discovery);
      return;
    }
    if (request.headers['tus-resumable'] !== TUS_VERSION) {
      throw new AppError(
        'tus_version_unsupported',
        undefined,
        { received: request.headers['tus-resumable'] ?? null, supported: [TUS_VERSION] },
        { 'tus-version': TUS_VERSION },
      );
    }
  });

  const uploadUrl = (id: string) => `${config.publicUrl}${apiPath(ROUTES.tusUpload, { id })}`;
  const stateHeaders = (reply: FastifyReply, s: TusState) =>
    reply.headers({
      'upload-offset': String(s.offset),
      'upload-expires': s.expiresAt.toUTCString(),
      'cache-control': 'no-store',
    });

  /** The body, unless the client went away (then `upload_aborted`, not our fault). */
  async function withBody<T>(request: FastifyRequest, run: (body: Readable) => Promise<T>) {
    const type = request.headers['content-type'];
    if (type?.split(';')[0]?.trim().toLowerCase() !== TUS_CONTENT_TYPE) {
      throw new AppError('unsupported_media_type', `Send the bytes as ${TUS_CONTENT_TYPE}.`, {
        received: type ?? null,
      });
    }
    try {
      return await run(withIdleTimeout(request.raw, config.uploads.idleTimeoutSeconds * 1000));
    } catch (err) {
      if (
        !(err instanceof AppError) &&
        !isServerFault(err) &&
        (request.raw.destroyed || request.raw.readableAborted)
      ) {
        throw new AppError('upload_aborted');
      }
      throw err;
    }
  }
  const hasBody = (request: FastifyRequest) =>
    request.headers['transfer-encoding'] !== undefined ||
    (request.headers['content-length'] !== undefined && request.headers['content-length'] !== '0');
  const contentLength = (request: FastifyRequest) => {
    const v = request.headers['content-length'];
    return v === undefined ? undefined : Number(v);
  };

  for (const url of ['/tus', '/tus/', '/tus/:id']) {
    app.options(
      url,
      {
        schema: {
          summary: 'tus discovery: version, extensions, maximum size, checksum algorithms',
          tags: ['tus'],
          operationId:
            url === '/tus/:id' ? 'tusUploadOptions' : url === '/tus' ? 'tusOptions' : 'tusOptionsSlash',
          security: PUBLIC,
          // `/tus/` (clients are often given the endpoint with a slash) is the same route: one entry.
          hide: url === '/tus/',
          ...(url === '/tus/:id' ? { params: MediaIdParams } : {}),
          response: {
            204: noBody('Capabilities, in headers.', {
              'Tus-Version': headerDoc(TUS_VERSION),
              'Tus-Extension': headerDoc(TUS_EXTENSIONS.join(',')),
              'Tus-Max-Size': headerDoc('The largest upload accepted, in bytes (per type: see the README).'),
              'Tus-Checksum-Algorithm': headerDoc(TUS_CHECKSUM_ALGORITHMS.join(',')),
            }),
          },
        },
      },
      async (_request, reply) => reply.status(204).send(null),
    );
  }

  for (const url of ['/tus', '/tus/'] as const) {
    app.post(
      url,
      {
        onRequest: admittedThen(admission, auth.required),
        config: {
          // The same bucket as POST /media: a tus client gets no extra sessions.
          rateLimit: perPrincipalRateLimit('sessions', config.rateLimit.sessionsPerMinute),
          tusBody: true,
          optionalBody: true,
        },
        schema: {
          summary: 'tus creation (and creation-with-upload): an upload session whose bytes come by PATCH',
          description:
            'Headers: `Upload-Length` (bytes; required: deferred lengths are not supported), `Upload-Metadata` (`filename`, `filetype` — required — and any session field: `sha256`, `capturedAt`, `cameraId`, `deviceId`, `messageId`, `reason`, `purpose`, `circleId`, `mediaType`; other keys are ignored), `Idempotency-Key` (users). A body (`application/offset+octet-stream`) is the first bytes. Limits, quotas and idempotency are those of `POST /media`.',
          tags: ['tus'],
          operationId: url === '/tus' ? 'tusCreate' : 'tusCreateSlash',
          hide: url === '/tus/',
          headers: Type.Object({
            'tus-resumable': TusResumable,
            'upload-length': Type.Optional(Digits),
            'upload-defer-length': Type.Optional(Type.String()),
            'upload-metadata': Type.Optional(Type.String({ maxLength: 8192 })),
            'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          }),
          response: {
            201: noBody('Created; `Location` is the upload URL.', {
              Location: headerDoc('The upload URL: `/api/v1/tus/{mediaId}` on PUBLIC_URL.'),
              ...STATE_HEADERS,
            }),
            ...errors(400, 401, 403, 404, 408, 409, 410, 412, 413, 415, 422, 429, 460, 503, 507),
          },
        },
      },
      async (request, reply) => {
        const principal = principalOf(request);
        const lengthHeader = request.headers['upload-length'];
        if (lengthHeader === undefined) {
          throw new AppError(
            'validation_failed',
            request.headers['upload-defer-length'] !== undefined
              ? 'Upload-Defer-Length is not supported: send Upload-Length.'
              : 'Upload-Length is required.',
            { header: 'upload-length' },
          );
        }
        const length = Number(lengthHeader);
        const input = sessionInput(length, parseUploadMetadata(request.headers['upload-metadata']));
        const validate = request.compileValidationSchema(CreateSessionBody);
        if (!validate(input)) {
          throw new AppError('validation_failed', 'Upload-Length or Upload-Metadata is not valid.', {
            in: 'headers',
            issues: (validate.errors ?? []).map((e) => ({ path: e.instancePath, message: e.message })),
          });
        }
        const created = await tus.create(
          principal,
          input as CreateSessionBody,
          request.headers['idempotency-key'],
          request.headers['upload-metadata'] ?? null,
        );
        const location = uploadUrl(created.media.id);
        let state = created;
        if (hasBody(request)) {
          try {
            state = await withBody(request, (body) =>
              tus.append(principal, created.media.id, created.offset, body, {
                contentLength: contentLength(request),
                checksum: parseChecksum(request.headers['upload-checksum']),
              }),
            );
          } catch (err) {
            // The session exists: the client learns where, and resumes with HEAD.
            if (err instanceof AppError) {
              throw new AppError(err.code, err.message, err.details, { ...err.headers, location });
            }
            throw err;
          }
        }
        stateHeaders(reply, state).header('location', location);
        return reply.status(201).send(null);
      },
    );
  }

  app.head(
    '/tus/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'tus: where an upload stands (Upload-Offset, Upload-Length)',
        tags: ['tus'],
        operationId: 'tusHead',
        params: MediaIdParams,
        headers: Type.Object(IdleHeaders),
        response: {
          200: noBody('The state, in headers (no body).', {
            ...STATE_HEADERS,
            'Upload-Length': headerDoc('The declared size.'),
            'Upload-Metadata': headerDoc('As sent at creation.'),
          }),
          ...errors(400, 401, 404, 410, 412),
        },
      },
    },
    async (request, reply) => {
      const state = await tus.state(principalOf(request), request.params.id);
      stateHeaders(reply, state).header('upload-length', String(state.length));
      if (state.metadata !== null) void reply.header('upload-metadata', state.metadata);
      return reply.status(200).send(null);
    },
  );

  app.patch(
    '/tus/:id',
    {
      onRequest: auth.required,
      config: { tusBody: true },
      schema: {
        summary: 'tus: append bytes at Upload-Offset; the last byte completes the upload',
        description:
          'Body `application/offset+octet-stream`. `Upload-Offset` must equal the current offset (409 otherwise). Optional `Upload-Checksum: <sha1|sha256|md5> <base64>` of this body: kept whole or not at all (460). Without it, bytes that arrive before an interruption are kept. One PATCH at a time per upload (423). The final PATCH verifies the file like `POST /media/{id}/complete` (sniffed type, declared sha256) and starts processing.',
        tags: ['tus'],
        operationId: 'tusPatch',
        params: MediaIdParams,
        headers: Type.Object({
          ...IdleHeaders,
          'upload-offset': Digits,
          'upload-checksum': Type.Optional(Type.String({ maxLength: 200 })),
        }),
        response: {
          204: noBody('Appended.', STATE_HEADERS),
          ...errors(400, 401, 403, 404, 408, 409, 410, 412, 413, 415, 422, 423, 460, 503, 507),
        },
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const state = await withBody(request, (body) =>
        tus.append(principal, request.params.id, Number(request.headers['upload-offset']), body, {
          contentLength: contentLength(request),
          checksum: parseChecksum(request.headers['upload-checksum']),
        }),
      );
      stateHeaders(reply, state);
      return reply.status(204).send(null);
    },
  );

  app.delete(
    '/tus/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'tus termination: cancel the upload (the media becomes FAILED, cancelled)',
        tags: ['tus'],
        operationId: 'tusTerminate',
        params: MediaIdParams,
        headers: Type.Object(IdleHeaders),
        response: {
          204: noBody('Terminated.', { 'Tus-Resumable': headerDoc('1.0.0') }),
          ...errors(400, 401, 404, 409, 412),
        },
      },
    },
    async (request, reply) => {
      await tus.terminate(principalOf(request), request.params.id);
      return reply.status(204).send(null);
    },
  );
};
