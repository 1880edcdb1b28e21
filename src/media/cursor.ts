import { AppError } from '../errors.ts';
import { isCalendarInstant } from '../time.ts';

export interface Cursor {
  /** captured_at exactly as Postgres prints it (keeps microseconds a JS Date would lose). */
  capturedAt: string;
  id: string;
}

/**
 * `timestamptz::text` in Postgres' ISO DateStyle, as the listing query prints it; only such text
 * goes back into the query (a string Date.parse accepts may still be one Postgres rejects).
 */
const PG_TIMESTAMPTZ =
  /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.\d{1,6})?[+-]\d{2}(?::\d{2}){0,2}$/;

function isPgTimestamp(s: string): boolean {
  const m = PG_TIMESTAMPTZ.exec(s);
  return m !== null && isCalendarInstant(m, 1);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Opaque to clients: base64url JSON. */
export function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify([c.capturedAt, c.id])).toString('base64url');
}

export function decodeCursor(raw: string): Cursor {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      typeof parsed[0] === 'string' &&
      isPgTimestamp(parsed[0]) &&
      typeof parsed[1] === 'string' &&
      UUID.test(parsed[1])
    ) {
      return { capturedAt: parsed[0], id: parsed[1] };
    }
  } catch {
    // fall through
  }
  throw new AppError('invalid_cursor', 'The cursor is not valid; pass the nextCursor of a previous page.');
}
