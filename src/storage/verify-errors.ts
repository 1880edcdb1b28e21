import { AppError } from '../errors.ts';

/** The errors every store raises when received bytes do not match what was declared. */
export const tooLarge = (bytes: number) =>
  new AppError('upload_too_large', `More than the declared ${bytes} bytes were sent.`, {
    declaredBytes: bytes,
  });

export const incomplete = (bytes: number, size: number) =>
  new AppError('upload_incomplete', `Expected ${bytes} bytes, received ${size}.`, {
    expectedBytes: bytes,
    receivedBytes: size,
  });

export const checksumMismatch = (expected: string, actual: string) =>
  new AppError('checksum_mismatch', `Expected sha256 ${expected}, received ${actual}.`, {
    expectedSha256: expected,
    actualSha256: actual,
  });
