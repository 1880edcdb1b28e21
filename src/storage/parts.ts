/** S3's multipart limits, which every backend follows so one client protocol fits all. */
export const MiB = 1024 * 1024;
export const MIN_PART_BYTES = 5 * MiB;
export const MAX_PART_BYTES = 5 * 1024 * MiB;
export const MAX_PARTS = 10_000;

export interface PartPlan {
  bytes: number;
  partSize: number;
  partCount: number;
}

/**
 * Splits `bytes` into parts of `preferred` bytes (at least 5 MiB), growing the part size in whole
 * MiB when that would need more than 10,000 parts. Every part but the last is `partSize` bytes.
 */
export function planParts(bytes: number, preferred: number): PartPlan {
  let partSize = Math.max(MIN_PART_BYTES, preferred);
  if (Math.ceil(bytes / partSize) > MAX_PARTS) partSize = Math.ceil(bytes / MAX_PARTS / MiB) * MiB;
  if (partSize > MAX_PART_BYTES) throw new RangeError(`${bytes} bytes do not fit in ${MAX_PARTS} parts`);
  return { bytes, partSize, partCount: Math.max(1, Math.ceil(bytes / partSize)) };
}

/** Exact size of part `n` (1-based) under `plan`. */
export function partBytes(plan: PartPlan, n: number): number {
  return n < plan.partCount ? plan.partSize : plan.bytes - (plan.partCount - 1) * plan.partSize;
}
