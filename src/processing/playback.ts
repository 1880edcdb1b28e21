/**
 * HLS playback of private media. The bucket stays private and players send no credentials: the
 * master playlist is fetched with the caller's credentials (or a token), and every URI in the
 * playlists we hand out is rewritten to this API with a token — an HMAC over the media id, the
 * HLS run's prefix and an expiry. The token route checks it and serves only objects recorded for
 * that run, so a token opens exactly one video's current ladder until it expires.
 */
import path from 'node:path';
import type { Principal } from '../auth/principals.ts';
import type { Pool } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import type { MediaService } from '../media/service.ts';
import { hlsContentType, hlsPrefixOf } from '../media/layout.ts';
import { findMedia } from '../media/repo.ts';
import type { ObjectStore, OpenableObject } from '../storage/types.ts';

/** Relative paths inside a run's prefix: `master.m3u8` or `<rendition>/<file>`, no dot segments. */
const HLS_PATH = /^(?:master\.m3u8|(?:360p|720p|1080p|2160p)\/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63})$/;

export const isHlsPath = (p: string) => HLS_PATH.test(p);

/** What a valid playback token grants: one run of one media's ladder, until `expiresAt` (Unix s). */
export interface PlaybackGrant {
  runId: string;
  expiresAt: number;
}

/**
 * The port through which playback gets its tokens and the URLs playlists point to; the HTTP layer
 * implements it (src/http/urls.ts), so this module builds no URL. The token (the one signer's
 * 'hls' resource) is `<expires>.<runId>.<signature>` over the media id, the run's prefix
 * (`hls/<mediaId>/<runId>`) and the expiry. The run id travels in the token so that the token is
 * checked before any row is read: a forged token gets the same 403 for a media that exists and one
 * that does not.
 */
export interface PlaybackUrls {
  /** A token for every object of run `runId` of `mediaId`'s ladder. */
  token(mediaId: string, runId: string, expiresAt: number): string;
  /** What `token` grants for `mediaId`; throws 403 `signature_invalid` / `signature_expired`. */
  verifyToken(mediaId: string, token: string): PlaybackGrant;
  /** The URL of `rel` (`master.m3u8`, `<rung>/<file>`) of the media's ladder, carrying `token`. */
  hlsObject(mediaId: string, rel: string, token: string): string;
}

const runIdOf = (prefix: string) => prefix.slice(prefix.lastIndexOf('/') + 1);

export type HlsResponse =
  | { kind: 'playlist'; body: string }
  | ({
      kind: 'object';
      /** Seconds the token has left: how long a browser may reuse the response. */
      maxAge: number;
    } & OpenableObject);

export class HlsPlayback {
  constructor(
    private readonly pool: Pool,
    private readonly media: MediaService,
    private readonly store: ObjectStore,
    private readonly urls: PlaybackUrls,
    private readonly config: { processing: { video: { tokenTtlSeconds: number } } },
  ) {}

  /** The master playlist for a principal that may see the media, with fresh tokens in its URIs. */
  async master(principal: Principal, mediaId: string): Promise<string> {
    const m = await this.media.view(principal, mediaId);
    // Accessible but not a video: a state, not a missing thing (strangers got 404 from `view`).
    if (m.media_type !== 'video') {
      throw new AppError('invalid_state', 'This media is an image; only videos have playlists.', {
        mediaType: m.media_type,
      });
    }
    if (m.status !== 'READY' || m.hls_master_key === null) {
      throw new AppError('invalid_state', `The video is ${m.status}; it has no playlists yet.`, {
        status: m.status,
      });
    }
    const prefix = hlsPrefixOf(m.hls_master_key);
    const expires = Math.floor(Date.now() / 1000) + this.config.processing.video.tokenTtlSeconds;
    const token = this.urls.token(m.id, runIdOf(prefix), expires);
    return this.playlist(m.id, prefix, 'master.m3u8', token, expires);
  }

  /**
   * One object of the ladder, behind a token (no credentials: this is what players fetch). The
   * token is checked first, from the URL alone; only a token this API signed leads to a row.
   */
  async object(mediaId: string, rel: string, token: string): Promise<HlsResponse> {
    const { runId, expiresAt: expires } = this.urls.verifyToken(mediaId, token);
    const prefix = `hls/${mediaId}/${runId}`;
    if (!isHlsPath(rel)) throw new AppError('not_found', 'No such playlist or segment.');
    const m = await findMedia(this.pool, mediaId);
    if (!m || m.status !== 'READY' || m.hls_master_key === null) {
      throw new AppError('not_found', 'Media not found.');
    }
    // Signed for an earlier run of the ladder (reprocessed since): that run is gone.
    if (hlsPrefixOf(m.hls_master_key) !== prefix) {
      throw new AppError('signature_invalid', 'The playback token is for an earlier version of this video.');
    }
    const key = `${prefix}/${rel}`;
    const { rowCount } = await this.pool.query(
      'SELECT 1 FROM media_hls_objects WHERE media_id = $1 AND storage_key = $2',
      [m.id, key],
    );
    if (rowCount !== 1) throw new AppError('not_found', 'No such playlist or segment.');
    if (rel.endsWith('.m3u8'))
      return { kind: 'playlist', body: await this.playlist(m.id, prefix, rel, token, expires) };
    const stat = await this.store.stat(key);
    if (!stat) throw new AppError('not_found', 'The stored segment is missing.');
    return {
      kind: 'object',
      contentType: hlsContentType(rel),
      contentDisposition: 'inline',
      etag: stat.etag,
      size: stat.size,
      lastModified: stat.lastModified,
      maxAge: Math.max(0, expires - Math.floor(Date.now() / 1000)),
      open: (range) => this.store.get(key, range),
    };
  }

  /**
   * Reads a stored playlist and points every URI in it at the token route; on a store whose
   * signed URLs reach it directly (S3), segments and init segments instead get presigned store
   * URLs that expire with the token, so video bytes never pass through the API.
   */
  private async playlist(
    mediaId: string,
    prefix: string,
    rel: string,
    token: string,
    expiresAt: number,
  ): Promise<string> {
    const stream = await this.store.get(`${prefix}/${rel}`);
    if (!stream) throw new AppError('not_found', 'The stored playlist is missing.');
    const chunks: Buffer[] = [];
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    const text = Buffer.concat(chunks).toString('utf8');
    const dir = path.posix.dirname(rel);
    const target = (uri: string) => {
      if (/^[a-z][a-z0-9+.-]*:/i.test(uri)) return undefined; // absolute: not ours
      const t = path.posix.normalize(path.posix.join(dir, uri));
      return isHlsPath(t) ? t : undefined;
    };
    const direct = new Map<string, string>();
    if (this.store.capabilities.presignedGet) {
      const segments = new Set<string>();
      rewritePlaylist(text, (uri) => {
        const t = target(uri);
        if (t !== undefined && !t.endsWith('.m3u8')) segments.add(t);
        return uri;
      });
      const nowS = Math.floor(Date.now() / 1000);
      // Signed as of the start of the current minute: the same playlist asked for again within
      // it reuses the store's signed URLs (S3ObjectStore keeps them).
      const signedAt = Math.min(nowS - (nowS % 60), expiresAt - 1);
      await Promise.all(
        [...segments].map(async (t) => {
          const url = await this.store.signedGetUrl(`${prefix}/${t}`, {
            signedAt,
            expiresInSeconds: expiresAt - signedAt,
            contentType: hlsContentType(t),
            contentDisposition: 'inline',
            // Players fetch segments one way (hls.js: CORS; native players: without), so a
            // cached segment is not reused across request modes as an <img>'s might be.
            cacheControl: `private, max-age=${expiresAt - signedAt}`,
          });
          direct.set(t, url);
        }),
      );
    }
    return rewritePlaylist(text, (uri) => {
      const t = target(uri);
      if (t === undefined) return uri;
      return direct.get(t) ?? this.urls.hlsObject(mediaId, t, token);
    });
  }
}

/** Applies `map` to every URI of an m3u8: URI lines and `URI="…"` attributes of tags. */
export function rewritePlaylist(text: string, map: (uri: string) => string): string {
  return text
    .split('\n')
    .map((line) => {
      const trimmed = line.trim();
      if (trimmed === '') return line;
      if (trimmed.startsWith('#'))
        return line.replace(/URI="([^"]*)"/g, (_m, uri: string) => `URI="${map(uri)}"`);
      return map(trimmed);
    })
    .join('\n');
}
