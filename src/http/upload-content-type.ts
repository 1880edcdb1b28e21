import type { FastifyInstance } from 'fastify';
import { AppError } from '../errors.ts';

/** The comma-separated members of a header value, commas inside quoted strings kept. */
function members(header: string): string[] {
  return (header.match(/(?:[^,"]|"(?:\\.|[^"\\])*")+/g) ?? []).map((m) => m.trim()).filter((m) => m !== '');
}

/** `Image/JPEG ; q="a"` and `image/jpeg;q="a"` compare equal: type lower-cased, spaces around `;` gone. */
function normalize(value: string): string {
  const [type = '', ...params] = value.split(';').map((p) => p.trim());
  return [type.toLowerCase(), ...params].join(';');
}

/**
 * A `Content-Type` that names one type several times (`image/jpeg, image/jpeg`) is what `fetch`
 * sends when a client spreads `upload.headers` (`Content-Type`) and adds its own `content-type`:
 * the header list is joined with a comma. Such a value is folded into one before Fastify parses
 * it (it would answer 415 for the list); a list of different types is a `content_type_mismatch`,
 * as one type differing from the declared one would be.
 */
export function foldRepeatedContentType(header: string | undefined): string | undefined {
  if (header === undefined || !header.includes(',')) return header;
  const values = members(header);
  if (values.length === 0) return header;
  const first = normalize(values[0]!);
  if (values.every((v) => normalize(v) === first)) return values[0];
  throw new AppError('content_type_mismatch', 'Content-Type names more than one type; send one.', {
    received: values,
  });
}

/** onRequest hook of the raw upload routes (single PUT and part PUTs). */
export function acceptRepeatedContentType(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    const header = request.raw.headers['content-type'];
    const folded = foldRepeatedContentType(header);
    if (folded !== header) request.raw.headers['content-type'] = folded;
  });
}
