/** The audit log (`GET /audit`, `GET /admin/audit`): who did what to which resource, when, from where. */
import { Type } from '@sinclair/typebox';
import { Cursor, Nullable, Text } from './common.ts';

/** Rows per page when `limit` is not given. */
export const DEFAULT_AUDIT_PAGE_SIZE = 50;

/** Every action the log records (docs/CONTRACTS.md "Audit log" says when). */
export const AUDIT_ACTIONS = [
  'device.created',
  'device.claimed',
  'device.renamed',
  'device.handed_over',
  'device.key_rotated',
  'device.revoked',
  'device.deleted',
  'media.deleted',
  'media.downloaded',
  'media.variant_downloaded',
  'media.playback_issued',
  'media.urls_issued',
  'share.created',
  'share.changed',
  'share.removed',
  'circle.member_added',
  'circle.member_removed',
  'admin.storage_migrate',
  'admin.storage_sweep',
] as const;

export const AuditAction = Type.Union(
  AUDIT_ACTIONS.map((a) => Type.Literal(a)),
  { description: 'What was done.' },
);

export const AuditQuery = Type.Object(
  {
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: DEFAULT_AUDIT_PAGE_SIZE })),
    cursor: Type.Optional(Cursor),
    action: Type.Optional(AuditAction),
    resourceId: Type.Optional(
      Text({ minLength: 1, maxLength: 200, description: 'A media, device, post or circle id.' }),
    ),
    since: Type.Optional(Type.String({ format: 'date-time', description: 'Rows at or after this time.' })),
    until: Type.Optional(Type.String({ format: 'date-time', description: 'Rows before this time.' })),
  },
  { additionalProperties: false },
);

export const AuditEntry = Type.Object({
  id: Type.Integer({ description: 'Increases in the order rows were written.' }),
  at: Type.String({ format: 'date-time' }),
  action: Type.String({ description: 'One of the actions listed for the `action` filter.' }),
  actor: Type.Object({
    kind: Type.String({
      description:
        '`user`, `device`, `service` (gRPC), `cli` (an operator command), `system` (a periodic job) or `database` (SQL outside Mediary: `id` is the database role).',
    }),
    id: Nullable(Type.String()),
  }),
  resource: Type.Object({
    type: Type.String({
      description: '`media`, `post`, `device` or `circle` (or `storage` for admin commands).',
    }),
    id: Type.String(),
  }),
  ip: Nullable(Type.String({ description: 'The client address (the connection’s peer).' })),
  userAgent: Nullable(Type.String()),
  requestId: Nullable(Type.String()),
  details: Type.Record(Type.String(), Type.Unknown()),
});

export const AuditPage = Type.Object({
  items: Type.Array(AuditEntry),
  nextCursor: Nullable(Type.String()),
});
