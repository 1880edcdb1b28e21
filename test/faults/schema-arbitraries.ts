/**
 * fast-check generators driven by the OpenAPI schemas the service publishes: valid values (to get
 * past validation into the handlers), values at and just past the schemas' edges, and junk.
 * Used by fuzz.fault.ts.
 */
import fc from 'fast-check';

export type Schema = {
  type?: string;
  format?: string;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
};
export interface Operation {
  parameters?: { in: string; name: string; required?: boolean; schema: Schema }[];
  requestBody?: { content: Record<string, { schema: Schema }> };
}

export const nasty = fc.constantFrom(
  '',
  ' ',
  '\u0000',
  '../../../etc/passwd',
  '%00',
  '%2e%2e%2f',
  '\u202e\u0000\uffff',
  "'; DROP TABLE media; --",
  '{"$gt":""}',
  'null',
  '-1',
  '1e309',
  'NaN',
  '0x10',
  '💥'.repeat(300),
  'x'.repeat(70_000),
  '9'.repeat(400),
);
const junk: fc.Arbitrary<unknown> = fc.oneof(
  nasty,
  fc.string({ maxLength: 300, unit: 'binary' }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
  fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, -0, 2 ** 63, -(2 ** 31)),
);

/** Values that satisfy the schema (so requests get past validation into the handlers). */
function validArb(s: Schema): fc.Arbitrary<unknown> {
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  if (s.anyOf) return fc.oneof(...s.anyOf.map(validArb));
  switch (s.type ?? '') {
    case 'string':
      if (s.format === 'uuid') return fc.uuid();
      if (s.format === 'date-time')
        return fc
          .date({ min: new Date('1900-01-01'), max: new Date('2200-01-01'), noInvalidDate: true })
          .map((d) => d.toISOString());
      if (s.pattern) return fc.stringMatching(new RegExp(s.pattern));
      return fc.string({ minLength: s.minLength ?? 0, maxLength: Math.min(s.maxLength ?? 40, 300) });
    case 'integer':
      return fc.integer({
        min: Math.max(s.minimum ?? -(2 ** 31), Number.MIN_SAFE_INTEGER),
        max: Math.min(s.maximum ?? 2 ** 31, Number.MAX_SAFE_INTEGER),
      });
    case 'number':
      return fc.double({ noNaN: true });
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(s.items ? validArb(s.items) : junk, { maxLength: 4 });
    case 'object': {
      const props = Object.fromEntries(Object.entries(s.properties ?? {}).map(([k, v]) => [k, validArb(v)]));
      return fc.record(props, { requiredKeys: (s.required ?? []).filter((k) => k in props) });
    }
    default:
      return junk;
  }
}

/** Values at and just past the schema's edges. */
function boundaryArb(s: Schema): fc.Arbitrary<unknown> {
  const out: unknown[] = [];
  if (s.type === 'integer' || s.type === 'number') {
    for (const b of [s.minimum, s.maximum]) if (b !== undefined) out.push(b, b - 1, b + 1);
    out.push(0, -1, 1.5, '12', Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 1);
  }
  if (s.type === 'string') {
    for (const n of [s.minLength, s.maxLength]) {
      if (n !== undefined) out.push('a'.repeat(n), 'a'.repeat(n + 1), n > 0 ? 'a'.repeat(n - 1) : '');
    }
    // Text Postgres cannot store (was a 500 for free-text fields).
    out.push('a\u0000b');
    if (s.format === 'uuid')
      out.push('00000000-0000-0000-0000-000000000000', 'not-a-uuid', 'ffffffff-ffff-ffff-ffff-fffffffffffff');
    if (s.format === 'date-time')
      out.push(
        '2026-02-30T00:00:00Z',
        '0000-01-01T00:00:00Z',
        '9999-12-31T23:59:59.999999Z',
        '2026-01-01',
        // A leap second: valid RFC 3339, an Invalid Date in JS (was a 500).
        '2016-12-31T23:59:60Z',
      );
  }
  return out.length > 0 ? fc.constantFrom(...out) : junk;
}

/** Mostly hostile, sometimes valid. */
export function hostileArb(s: Schema): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: validArb(s) },
    { weight: 2, arbitrary: boundaryArb(s) },
    { weight: 2, arbitrary: junk },
  );
}

/** A JSON request body for schema `s`: valid, mutated (wrong, missing, unknown fields), junk or malformed. */
export function bodyArb(s: Schema): fc.Arbitrary<string | undefined> {
  const valid = validArb(s);
  const mutated = fc
    .tuple(
      valid,
      fc.constantFrom(...(Object.keys(s.properties ?? {}).length > 0 ? Object.keys(s.properties!) : ['x'])),
      junk,
      fc.nat(3),
    )
    .map(([v, key, bad, how]) => {
      const o = { ...(v as Record<string, unknown>) };
      if (how === 0)
        o[key] = bad; // wrong type or value
      else if (how === 1)
        delete o[key]; // missing field
      else if (how === 2)
        o[`unknown_${key}`] = bad; // unknown field
      // prototype pollution attempt: an own "__proto__" key, as JSON.parse would produce
      else Object.defineProperty(o, '__proto__', { value: bad, enumerable: true });
      return o;
    });
  return fc.oneof(
    { weight: 3, arbitrary: valid.map((v) => JSON.stringify(v)) },
    { weight: 4, arbitrary: mutated.map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: junk.map((v) => JSON.stringify(v) ?? 'undefined') },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '{',
        '{"fileName": }',
        '[]',
        '"string"',
        '{"a":1}{"b":2}',
        '{"bytes": 1e999999}',
        '\u0000\u0001',
        `{"fileName":"${'x'.repeat(70_000)}"}`,
        '{"__proto__": {"polluted": true}}',
        '{"constructor": {"prototype": {"polluted": true}}}',
      ),
    },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );
}
