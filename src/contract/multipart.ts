/** The multipart protocol on the wire: part URLs on demand, stored parts for resume. */
import { Type } from '@sinclair/typebox';
import { MediaIdParams, PartNumber, PutInstructions } from './media.ts';

/** One part's signed PUT: the same shape as a single upload's, with its number. */
export const PartUrl = Type.Object({ partNumber: Type.Integer(), ...PutInstructions.properties });

export const SignPartsBody = Type.Object(
  { partNumbers: Type.Array(PartNumber, { minItems: 1, maxItems: 100 }) },
  { additionalProperties: false },
);
export const SignPartsResponse = Type.Object({ parts: Type.Array(PartUrl) });

export const StoredPart = Type.Object({
  partNumber: Type.Integer(),
  etag: Type.String(),
  size: Type.Integer(),
});
export const PartListing = Type.Object({
  partSize: Type.Integer(),
  partCount: Type.Integer(),
  parts: Type.Array(StoredPart),
});

export const PartParams = Type.Object({ id: MediaIdParams.properties.id, partNumber: PartNumber });
export const PartUploadQuery = Type.Object(
  {
    expires: Type.String({ pattern: '^\\d{1,12}$' }),
    // Optional in the schema: a URL without it is a tampered URL (403), not a malformed one.
    upload: Type.Optional(Type.String({ maxLength: 1024 })),
    sig: Type.String({ maxLength: 128 }),
  },
  { additionalProperties: false },
);
