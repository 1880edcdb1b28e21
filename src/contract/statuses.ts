/**
 * Every status a media record can have: the one list the server, the database code, the CLI and
 * the SDK use. Plain values (no schema library), so anything may import it at run time.
 */
export const MEDIA_STATUSES = ['PENDING', 'UPLOADED', 'PROCESSING', 'READY', 'FAILED', 'DELETED'] as const;
export type MediaStatus = (typeof MEDIA_STATUSES)[number];

/** Statuses a listing can filter on (a DELETED record is never listed). */
export const LISTABLE_STATUSES = [
  'PENDING',
  'UPLOADED',
  'PROCESSING',
  'READY',
  'FAILED',
] as const satisfies readonly MediaStatus[];
