import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import type { AuditWriter } from '../../audit/writer.ts';
import type { HlsPlayback, HlsResponse } from '../../processing/playback.ts';
import { principalOf, type registerAuth } from '../auth.ts';
import { HlsMasterQuery, HlsObjectParams, HlsObjectQuery, MediaIdParams } from '../../contract/index.ts';
import { BEARER_OR_SIGNED, bytesResponse, errors, NotModified, PUBLIC } from '../schemas.ts';
import { sendObject } from '../send-object.ts';
import { ROUTES } from '../urls.ts';

export interface HlsRouteDeps {
  playback: HlsPlayback;
  auth: ReturnType<typeof registerAuth>;
  /** Records playback plans handed out (a token for the whole ladder); never fails the answer. */
  audit: AuditWriter;
}

const PLAYLIST_TYPE = 'application/vnd.apple.mpegurl';

/**
 * HLS playback: the master playlist (credentials, or a token) and everything it points to (token
 * only, so a standard player needs nothing but the URLs). Token URLs are safe to load from any
 * origin: they carry their own authorisation and no cookies are involved.
 */
export const hlsRoutes: FastifyPluginAsyncTypebox<HlsRouteDeps> = async (app, { playback, auth, audit }) => {
  const send = (reply: FastifyReply, r: HlsResponse, request: Parameters<typeof sendObject>[0]) => {
    void reply.header('access-control-allow-origin', '*');
    if (r.kind === 'playlist') {
      // Playlists carry tokens: never stored by shared caches, never reused past them.
      return reply.header('cache-control', 'private, no-store').type(PLAYLIST_TYPE).send(r.body);
    }
    return sendObject(request, reply, { ...r, cacheControl: `private, max-age=${r.maxAge}` });
  };

  app.get(
    ROUTES.hlsMaster,
    {
      onRequest: auth.optional,
      schema: {
        summary: 'HLS master playlist; every URI in it carries a playback token',
        description: 'With the caller’s bearer token, or with `?token=` from any playlist URI.',
        tags: ['video'],
        operationId: 'getHlsMasterPlaylist',
        security: BEARER_OR_SIGNED,
        params: MediaIdParams,
        querystring: HlsMasterQuery,
        response: {
          200: bytesResponse('The master playlist.', PLAYLIST_TYPE),
          ...errors(400, 401, 403, 404, 409),
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { token } = request.query;
      if (token !== undefined && request.principal === null) {
        return send(reply, await playback.object(id, 'master.m3u8', token), request);
      }
      const principal = principalOf(request);
      const body = await playback.master(principal, id);
      audit.record({ action: 'media.playback_issued', actor: principal, mediaId: id });
      return send(reply, { kind: 'playlist', body }, request);
    },
  );

  app.get(
    ROUTES.hlsObject,
    {
      schema: {
        summary: 'A variant playlist or segment of the HLS ladder (playback token required)',
        tags: ['video'],
        operationId: 'getHlsObject',
        security: PUBLIC,
        params: HlsObjectParams,
        querystring: HlsObjectQuery,
        response: {
          200: bytesResponse('A media playlist or a segment.', PLAYLIST_TYPE, 'video/mp4'),
          206: bytesResponse('The requested range of a segment.', 'video/mp4'),
          304: NotModified,
          ...errors(400, 403, 404, 416),
        },
      },
    },
    async (request, reply) => {
      const { id, '*': rel } = request.params;
      return send(reply, await playback.object(id, rel, request.query.token), request);
    },
  );
};
