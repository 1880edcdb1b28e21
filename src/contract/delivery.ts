/** Routes reached by a signed URL or token (no credentials): local-store objects, HLS playback. */
import { Type } from '@sinclair/typebox';
import { Uuid } from './common.ts';

/** The query of a local-store object URL: expiry, the signed response headers, the signature. */
export const StorageObjectQuery = Type.Object(
  {
    expires: Type.String({ pattern: '^\\d{1,12}$' }),
    ct: Type.String({ maxLength: 255 }),
    cd: Type.String({ maxLength: 2048 }),
    sig: Type.String({ maxLength: 128 }),
  },
  { additionalProperties: false },
);

const Token = Type.String({
  minLength: 3,
  maxLength: 200,
  description: 'Playback token from a playlist URI.',
});
/** The master playlist: credentials, or a token from any playlist URI. */
export const HlsMasterQuery = Type.Object({ token: Type.Optional(Token) }, { additionalProperties: false });
/** Everything the master playlist points to: the token only. */
export const HlsObjectQuery = Type.Object({ token: Token }, { additionalProperties: false });
export const HlsObjectParams = Type.Object({ id: Uuid, '*': Type.String({ maxLength: 200 }) });

/**
 * The path parameters of `/hls/*` as documented: only `<rendition>/<file>` ever answers (the
 * master playlist has its own route). The route itself takes the wildcard ({@link HlsObjectParams}).
 */
export const HlsObjectPath = Type.Object({
  id: Uuid,
  rendition: Type.Union(['360p', '720p', '1080p', '2160p'].map((r) => Type.Literal(r))),
  file: Type.String({
    pattern: '^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}$',
    description: 'A media playlist (`index.m3u8`) or segment, as named in the playlists.',
  }),
});

/** The path parameter of `/storage/*` as documented. */
export const StorageObjectPath = Type.Object({
  key: Type.String({
    minLength: 1,
    description: 'The object key, `/` encoded as `%2F` (as in the signed URLs the API hands out).',
  }),
});
