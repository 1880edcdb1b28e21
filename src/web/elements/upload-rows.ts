/**
 * The uploader's model (`<mediary-uploader>`, uploader.ts): one row per file, and what a row shows —
 * why a file is refused before any request (the server's own limits, GET /api/v1/limits), how far
 * it got, and its status line. Pure functions of a row, kept apart from the element so they can be
 * tested without a browser.
 */
import { mimeTypeFor, type Progress, type UploadResult, type UploadTask } from '../../client/index.ts';
import { formatBytes, formatDuration } from './format.ts';

/** What the server accepts (GET /api/v1/limits). */
export interface UploadLimits {
  allowedMimeTypes: string[];
  maxImageBytes: number;
  maxVideoBytes: number;
}

export type RowState = 'queued' | 'uploading' | 'paused' | 'done' | 'failed' | 'cancelled' | 'rejected';

export interface Row {
  id: number;
  file: File;
  state: RowState;
  progress: Progress | undefined;
  retries: number;
  message: string;
  task: UploadTask | undefined;
  abort: AbortController | undefined;
  result: UploadResult | undefined;
}

/**
 * Why the server would refuse `file` (its type, its size, an empty file), or undefined. Without
 * the limits (not loaded yet, or not reachable) nothing is refused here: the server still refuses
 * what it must.
 */
export function refusalFor(file: File, limits: UploadLimits | undefined): string | undefined {
  if (!limits) return undefined;
  const type = file.type && file.type !== 'application/octet-stream' ? file.type : mimeTypeFor(file.name);
  if (!type || !limits.allowedMimeTypes.includes(type)) {
    return `This server does not take ${type || 'files of this type'}.`;
  }
  const max = type.startsWith('video/') ? limits.maxVideoBytes : limits.maxImageBytes;
  if (file.size > max) return `Too large: ${formatBytes(file.size)}; the limit is ${formatBytes(max)}.`;
  if (file.size === 0) return 'The file is empty.';
  return undefined;
}

/** The share of the file sent (0–1); a finished row is whole. */
export function fractionOf(row: Row): number {
  if (row.state === 'done') return 1;
  const p = row.progress;
  if (!p || p.totalBytes === 0) return 0;
  return p.bytesSent / p.totalBytes;
}

/** The row's status line: its state, and while it uploads, how far, resumed bytes and time left. */
export function describeRow(row: Row): string {
  const p = row.progress;
  switch (row.state) {
    case 'queued':
      return 'Waiting';
    case 'rejected':
    case 'cancelled':
      return row.state === 'rejected' ? 'Refused' : 'Cancelled';
    case 'failed':
      return 'Failed';
    case 'paused':
      return `Paused at ${Math.floor(fractionOf(row) * 100)}%`;
    case 'done':
      return row.result?.partsSkipped
        ? `Uploaded (resumed: ${row.result.partsSkipped} parts were already there)`
        : 'Uploaded';
    case 'uploading':
      if (!p) return 'Starting';
      if (p.phase === 'hashing')
        return `Checking ${Math.floor((p.bytesHashed / Math.max(1, p.totalBytes)) * 100)}%`;
      if (p.phase === 'completing' || p.phase === 'processing' || p.phase === 'done') return 'Finishing';
      return (
        `${Math.floor(fractionOf(row) * 100)}% · ${formatBytes(p.bytesSent)} of ${formatBytes(p.totalBytes)}` +
        (p.resumedBytes > 0 ? ` · resumed, ${formatBytes(p.resumedBytes)} were already there` : '') +
        (p.etaSeconds !== null && p.bytesPerSecond > 0 ? ` · ${formatDuration(p.etaSeconds)} left` : '')
      );
  }
}
