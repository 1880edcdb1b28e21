/**
 * String formats of the request schemas, stricter than ajv-formats where a value that passes
 * validation would otherwise fail later, in JavaScript or in Postgres (a 500 instead of a 400).
 */
import { isCalendarInstant } from '../time.ts';

/** RFC 3339 date-time with a time zone (the shape ajv-formats checks). */
const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

/** A date-time a JS Date and Postgres both hold as written (see isCalendarInstant). */
export function isStrictDateTime(s: string): boolean {
  const m = DATE_TIME.exec(s);
  if (!m) return false;
  const offsetOk = m[7] === undefined || (Number(m[7]) <= 23 && Number(m[8]) <= 59);
  return offsetOk && isCalendarInstant(m, 1);
}

/** Installed through Fastify's `ajv.onCreate`, after ajv-formats: replaces its `date-time`. */
export function strictFormats(ajv: {
  addFormat(name: string, format: { type: 'string'; validate: (s: string) => boolean }): unknown;
}): void {
  ajv.addFormat('date-time', { type: 'string', validate: isStrictDateTime });
}
