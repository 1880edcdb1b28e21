/**
 * The internal gRPC API (proto/mediary/v1/media.proto): a transport beside the HTTP routes, over
 * the same use cases. A calling service authenticates with GRPC_SERVICE_TOKEN and names the user
 * it acts for in each request; everything then runs exactly as that user's HTTP request would.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principals.ts';
import { AppError } from '../errors.ts';
import type { MediaPurpose, MediaRow } from '../media/repo.ts';
import type { MediaService } from '../media/service.ts';
import type { Admission } from '../processing/admission.ts';
import type { PostService } from '../posts/service.ts';
import { toGrpcError } from './errors.ts';

export const PROTO_PATH = fileURLToPath(new URL('../../proto/mediary/v1/media.proto', import.meta.url));

/** How the proto is read: camelCase fields, int64 as numbers, enums as their names. */
export const PROTO_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

export interface GrpcDeps {
  media: MediaService;
  posts: PostService;
  serviceToken: string;
  logger: Logger;
  /** Admission control of new upload sessions (ADMISSION_MAX_BACKLOG_SECONDS), as on HTTP. */
  admission?: Admission | undefined;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_IDS = 100;
type Purpose =
  'MEDIA_PURPOSE_UNSPECIFIED' | 'MEDIA_PURPOSE_LIBRARY' | 'MEDIA_PURPOSE_POST' | 'MEDIA_PURPOSE_PROFILE';
/** A session's purpose from the request's (UNSPECIFIED and LIBRARY: the default, `library`). */
const REQUESTED_PURPOSE: Readonly<Partial<Record<Purpose, MediaPurpose>>> = {
  MEDIA_PURPOSE_POST: 'post',
  MEDIA_PURPOSE_PROFILE: 'profile',
};
/** A media record's purpose in the proto. */
const PROTO_PURPOSE: Readonly<Record<MediaPurpose, Purpose>> = {
  library: 'MEDIA_PURPOSE_LIBRARY',
  post: 'MEDIA_PURPOSE_POST',
  profile: 'MEDIA_PURPOSE_PROFILE',
};

interface Req {
  userId: string;
  mediaId?: string;
  mediaIds?: string[];
  entity?: string;
  fileName?: string;
  mimeType?: string;
  bytes?: number;
  sha256?: string;
  idempotencyKey?: string;
  purpose?: Purpose;
}

/** Starts the gRPC server on host:port (plaintext HTTP/2); resolves with its port and a stopper. */
export async function startGrpcServer(
  deps: GrpcDeps,
  at: { host: string; port: number },
): Promise<{ port: number; close(): Promise<void> }> {
  const definition = protoLoader.loadSync(PROTO_PATH, PROTO_OPTIONS);
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    mediary: { v1: { MediaService: { service: grpc.ServiceDefinition } } };
  };
  const server = new grpc.Server();
  server.addService(pkg.mediary.v1.MediaService.service, handlers(deps));
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${at.host}:${at.port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  deps.logger.info({ port }, 'gRPC API listening');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        // In-flight calls get a few seconds, then are cut.
        const force = setTimeout(() => server.forceShutdown(), 5000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

function handlers(deps: GrpcDeps): grpc.UntypedServiceImplementation {
  const { media, posts } = deps;
  const expected = createHash('sha256').update(deps.serviceToken).digest();

  /** One unary method: authenticate, validate, run, map errors from our table. */
  const unary =
    (
      name: string,
      run: (req: Req, principal: Principal) => Promise<unknown>,
    ): grpc.handleUnaryCall<Req, unknown> =>
    (call, callback) => {
      const log = deps.logger.child({ grpc: name });
      void (async () => {
        try {
          authenticate(call.metadata, expected);
          const principal = userPrincipal(call.request.userId);
          callback(null, await run(call.request, principal));
        } catch (err) {
          const e = toGrpcError(err);
          if (e.code === grpc.status.INTERNAL) log.error({ err }, 'gRPC call failed');
          callback(e);
        }
      })();
    };

  return {
    CreateUploadSession: unary('CreateUploadSession', async (req, principal) => {
      await deps.admission?.check();
      const result = await media.createSession(
        principal,
        {
          fileName: req.fileName ?? '',
          mimeType: req.mimeType ?? '',
          bytes: req.bytes ?? 0,
          ...(req.sha256 ? { sha256: hex64(req.sha256) } : {}),
          ...(req.purpose && REQUESTED_PURPOSE[req.purpose]
            ? { purpose: REQUESTED_PURPOSE[req.purpose] }
            : {}),
        },
        req.idempotencyKey ? bounded(req.idempotencyKey, 'idempotencyKey') : undefined,
      );
      const u = result.upload;
      return {
        created: result.created,
        media: toMessage(result.media),
        upload:
          u === null
            ? undefined
            : u.method === 'PUT'
              ? { method: 'PUT', url: u.url, headers: u.headers, expiresAt: u.expiresAt }
              : { method: 'MULTIPART', partSize: u.partSize, partCount: u.partCount, expiresAt: u.expiresAt },
      };
    }),
    GetMedia: unary('GetMedia', async (req, principal) => ({
      media: toMessage(await media.view(principal, uuid(req.mediaId ?? ''))),
    })),
    BatchGetMedia: unary('BatchGetMedia', async (req, principal) => {
      const ids = uuids(req.mediaIds);
      const found: MediaRow[] = [];
      const missing: string[] = [];
      for (const id of ids) {
        try {
          found.push(await media.view(principal, id));
        } catch (err) {
          if (!(err instanceof AppError && err.code === 'not_found')) throw err;
          missing.push(id);
        }
      }
      return { media: found.map((m) => toMessage(m)), missingIds: missing };
    }),
    ValidateAttachable: unary('ValidateAttachable', async (req, principal) => {
      const problems = await posts.validateAttachable(principal, uuids(req.mediaIds));
      return { ok: problems.length === 0, problems };
    }),
    AttachMedia: unary('AttachMedia', async (req, principal) => {
      const rows = await posts.attachToEntity(principal, uuids(req.mediaIds), entity(req.entity));
      return { media: rows.map((m) => toMessage(m, entity(req.entity))) };
    }),
    DetachMedia: unary('DetachMedia', async (req, principal) => ({
      detached: await posts.detachFromEntity(principal, uuids(req.mediaIds), entity(req.entity)),
    })),
    DeleteMedia: unary('DeleteMedia', async (req, principal) => {
      let deleted = 0;
      for (const id of uuids(req.mediaIds)) {
        await media.delete(principal, id);
        deleted++;
      }
      return { deleted };
    }),
  };
}

function authenticate(metadata: grpc.Metadata, expected: Buffer) {
  const header = metadata.get('authorization')[0];
  const token = typeof header === 'string' && header.startsWith('Bearer ') ? header.slice(7) : '';
  const got = createHash('sha256').update(token).digest();
  if (!token || !timingSafeEqual(got, expected)) {
    throw new AppError(
      'unauthorized',
      'Send the service credential: authorization: Bearer <GRPC_SERVICE_TOKEN>.',
    );
  }
}

function userPrincipal(userId: string): Principal {
  return { kind: 'user', userId: bounded(userId, 'userId') };
}

function bounded(value: string, field: string): string {
  if (value.length < 1 || value.length > 200 || value.includes('\u0000')) {
    throw new AppError('validation_failed', `${field} must be 1–200 characters without U+0000.`, { field });
  }
  return value;
}

function hex64(value: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(value))
    throw new AppError('validation_failed', 'sha256 must be 64 hex digits.', { field: 'sha256' });
  return value;
}

function uuid(value: string, field = 'mediaId'): string {
  if (!UUID.test(value)) throw new AppError('validation_failed', `${field} must be a UUID.`, { field });
  return value.toLowerCase();
}

function uuids(values: string[] | undefined): string[] {
  const ids = values ?? [];
  if (ids.length === 0 || ids.length > MAX_IDS) {
    throw new AppError('validation_failed', `mediaIds must hold 1–${MAX_IDS} ids.`, { field: 'mediaIds' });
  }
  return ids.map((id) => uuid(id, 'mediaIds'));
}

function entity(value: string | undefined): string {
  return bounded(value ?? '', 'entity');
}

function toMessage(m: MediaRow, attachedTo = ''): Record<string, unknown> {
  return {
    mediaId: m.id,
    status: m.status,
    mediaType: m.media_type,
    mimeType: m.mime_type,
    bytes: m.bytes,
    ownerUserId: m.owner_user_id ?? '',
    width: m.width ?? 0,
    height: m.height ?? 0,
    placeholder: m.placeholder ?? '',
    purpose: PROTO_PURPOSE[m.purpose],
    createdAt: m.created_at.toISOString(),
    attachedTo,
  };
}
