/**
 * Building blocks of the wire contract. This folder imports nothing but `@sinclair/typebox`: the
 * server validates with these schemas, the OpenAPI document is generated from them and the SDK's
 * types are `Static<typeof …>` of them (type-only imports, so no schema reaches the browser bundle).
 */
import { Type } from '@sinclair/typebox';

export const Uuid = Type.String({ format: 'uuid', description: 'A UUID.' });

export const Sha256 = Type.String({
  pattern: '^[0-9a-fA-F]{64}$',
  description: 'Lower-case hex SHA-256 of the whole file.',
});

export const Identifier = (description: string, max = 128) =>
  Type.String({ pattern: `^[A-Za-z0-9][A-Za-z0-9_.-]{0,${max - 1}}$`, description });

/** Free text Postgres can store: any characters but NUL (text columns cannot hold U+0000). */
export const Text = (opts: { minLength?: number; maxLength: number; description?: string }) =>
  Type.String({ ...opts, pattern: '^[^\\u0000]*$' });

export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) =>
  Type.Union([t, Type.Null()]);

/** A user id in a path (`me` for the caller). */
export const UserIdParam = Type.String({ minLength: 1, maxLength: 200 });

export const Cursor = Type.String({ maxLength: 512 });

export const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
});

/** A body that may be absent (`null`) or `{}`, nothing else. */
export const EmptyBody = Type.Union([Type.Null(), Type.Object({}, { additionalProperties: false })]);

export const ErrorBody = Type.Object(
  {
    error: Type.Object({
      code: Type.String(),
      message: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
      requestId: Type.Optional(Type.String()),
    }),
  },
  { description: 'Every error response has this shape.' },
);

/** `error` of a media record and of its status. */
export const MediaError = Type.Object({ code: Type.String(), message: Type.String() });
