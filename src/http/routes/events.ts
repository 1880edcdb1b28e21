import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Principal } from '../../auth/principals.ts';
import type { Queryable } from '../../db/pool.ts';
import { StreamAccess } from '../../events/access.ts';
import { currentCursor, cursorAfter, type Cursor, type EventScope } from '../../events/repo.ts';
import { runStream, type EventHub } from '../../events/stream.ts';
import type { MediaService } from '../../media/service.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import { BEARER_OR_SIGNED, bytesResponse, errors, MediaIdParams } from '../schemas.ts';

export interface EventRouteDeps {
  db: Queryable;
  hub: EventHub;
  access: StreamAccess;
  media: MediaService;
  auth: ReturnType<typeof registerAuth>;
  heartbeatSeconds: number;
  logger: Logger;
}

const StreamQuery = Type.Object(
  {
    token: Type.Optional(
      Type.String({
        minLength: 3,
        maxLength: 1000,
        description: 'A stream token from `POST /events/token` (for EventSource, which sends no headers).',
      }),
    ),
  },
  { additionalProperties: false },
);
const StreamHeaders = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({
      pattern: '^[0-9]{1,18}$',
      description: 'Resume after this event id (EventSource sends it).',
    }),
  ),
});
const TokenResponse = Type.Object({
  token: Type.String({ description: 'Pass as `?token=` to the stream routes; names no credential.' }),
  expiresAt: Type.String({ format: 'date-time' }),
});
const STREAM_DESCRIPTION =
  '`text/event-stream`: `id:` is the event id, `event:` its type, `data:` `{id, type, createdAt, data}`. ' +
  'Resume with `Last-Event-ID`; a comment line every EVENTS_HEARTBEAT_SECONDS.';

/** Server-Sent Events of media and post changes (docs/CONTRACTS.md, "Events"). */
export const eventRoutes: FastifyPluginAsyncTypebox<EventRouteDeps> = async (app, deps) => {
  const { access, auth } = deps;
  // Streams never end on their own: closing the server ends them first.
  const streams = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const halt of streams) halt.abort();
  });
  // The bearer header as everywhere, or a stream token in the query (EventSource sends no headers).
  const streamAuth = async (request: FastifyRequest, reply: FastifyReply) => {
    const token = (request.query as { token?: unknown }).token;
    if (request.headers.authorization !== undefined || typeof token !== 'string') {
      return auth.required(request, reply);
    }
    request.principal = await access.principalOf(token);
  };

  const open = async (
    request: FastifyRequest,
    reply: FastifyReply,
    principal: Principal,
    scope: EventScope,
    first: string | undefined,
    stillAllowed: () => Promise<boolean>,
  ) => {
    const lastId = request.headers['last-event-id'];
    const cursor: Cursor =
      typeof lastId === 'string' ? await cursorAfter(deps.db, lastId) : await currentCursor(deps.db);
    const out = new PassThrough();
    const halt = new AbortController();
    streams.add(halt);
    reply.raw.on('close', () => halt.abort());
    halt.signal.addEventListener('abort', () => streams.delete(halt));
    const write = async (chunk: string) => {
      if (!out.write(chunk)) await once(out, 'drain', { signal: halt.signal }).catch(() => undefined);
    };
    out.write('retry: 2000\n\n');
    if (first !== undefined) out.write(first);
    const log = deps.logger.child({ reqId: request.id, stream: scope.kind });
    void runStream({
      db: deps.db,
      hub: deps.hub,
      scope,
      cursor,
      heartbeatMs: deps.heartbeatSeconds * 1000,
      stillAllowed: async () => (await access.stillActive(principal)) && (await stillAllowed()),
      write,
      signal: halt.signal,
      logger: log,
    }).finally(() => out.end());
    return reply
      .header('content-type', 'text/event-stream; charset=utf-8')
      .header('cache-control', 'no-cache, no-store')
      .header('x-accel-buffering', 'no')
      .send(out);
  };

  app.post(
    '/events/token',
    {
      onRequest: auth.required,
      schema: {
        summary: 'A short-lived token to open an event stream from a browser’s EventSource',
        tags: ['events'],
        operationId: 'createEventStreamToken',
        response: { 200: TokenResponse, ...errors(401) },
      },
    },
    async (request) => access.mintToken(principalOf(request)),
  );

  app.get(
    '/events',
    {
      onRequest: streamAuth,
      schema: {
        summary: 'Live events of all media and posts the caller may see',
        description: STREAM_DESCRIPTION,
        tags: ['events'],
        operationId: 'streamEvents',
        security: BEARER_OR_SIGNED,
        querystring: StreamQuery,
        headers: StreamHeaders,
        response: { 200: bytesResponse('The event stream.', 'text/event-stream'), ...errors(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      return open(request, reply, p, StreamAccess.scopeOf(p), undefined, () => Promise.resolve(true));
    },
  );

  app.get(
    '/media/:id/events',
    {
      onRequest: streamAuth,
      schema: {
        summary: 'Live status and processing progress of one media',
        description: `${STREAM_DESCRIPTION} The first message (\`event: media.status\`, no id) is the current status.`,
        tags: ['events'],
        operationId: 'streamMediaEvents',
        security: BEARER_OR_SIGNED,
        params: MediaIdParams,
        querystring: StreamQuery,
        headers: StreamHeaders,
        response: {
          200: bytesResponse('The event stream.', 'text/event-stream'),
          ...errors(400, 401, 403, 404),
        },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      const { id } = request.params;
      const m = await deps.media.view(p, id);
      const status = JSON.stringify({
        mediaId: m.id,
        status: m.status,
        progress: m.processing_progress,
        error: m.error,
      });
      const stillAllowed = () =>
        deps.media.view(p, id).then(
          () => true,
          () => false,
        );
      return open(
        request,
        reply,
        p,
        { kind: 'media', mediaId: id },
        `event: media.status\ndata: ${status}\n\n`,
        stillAllowed,
      );
    },
  );
};
