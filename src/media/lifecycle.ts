/**
 * The media lifecycle: its states, the transitions between them, and the codes a FAILED media
 * names. Pure data (no I/O): the SQL of each transition is in ./transitions.ts, which takes its
 * guards from {@link TRANSITIONS}, so the table below is the whole state machine.
 *
 *   PENDING ──complete──▶ UPLOADED ──startProcessing──▶ PROCESSING ──finishProcessing──▶ READY
 *      │                     │  ▲                          │  (startProcessing again: a retried attempt)
 *      └──failUpload──▶ FAILED ◀──────failProcessing───────┘
 *                            └──retryProcessing──▶ UPLOADED
 *   UPLOADED, PROCESSING, READY ──loseBytes──▶ FAILED (storage_missing: `storage reconcile --apply`)
 *   every state but DELETED ──delete──▶ DELETED (final)
 */

// The states are the wire contract's (declared once, in src/contract); this module adds the moves.
import type { MediaStatus } from '../contract/statuses.ts';

export { MEDIA_STATUSES, LISTABLE_STATUSES, type MediaStatus } from '../contract/statuses.ts';

export interface Transition {
  readonly from: readonly MediaStatus[];
  readonly to: MediaStatus;
}

/** Every status change there is, by name; ./transitions.ts has one guarded UPDATE per entry. */
export const TRANSITIONS = {
  /** The uploaded bytes were verified (size, sha256, sniffed type) and a job was queued. */
  complete: { from: ['PENDING'], to: 'UPLOADED' },
  /** The upload ended without verified bytes: cancelled, expired, or rejected at completion. */
  failUpload: { from: ['PENDING'], to: 'FAILED' },
  /** A worker starts an attempt (again, after an attempt that died, from PROCESSING). */
  startProcessing: { from: ['UPLOADED', 'PROCESSING'], to: 'PROCESSING' },
  /** The job wrote every derived object: variants, poster, HLS. */
  finishProcessing: { from: ['PROCESSING'], to: 'READY' },
  /** A failure no retry changes, or retries used up (also before an attempt started). */
  failProcessing: { from: ['UPLOADED', 'PROCESSING'], to: 'FAILED' },
  /** The client asked for another run (POST retry-processing). */
  retryProcessing: { from: ['FAILED'], to: 'UPLOADED' },
  /**
   * The original is gone from the store (found by `mediary storage reconcile --apply`): the record
   * must not promise bytes it cannot serve. The only way a READY media fails.
   */
  loseBytes: { from: ['UPLOADED', 'PROCESSING', 'READY'], to: 'FAILED' },
  /** Deleted by its owner, with its post, or by the post-media lifecycle. */
  delete: { from: ['PENDING', 'UPLOADED', 'PROCESSING', 'READY', 'FAILED'], to: 'DELETED' },
} as const satisfies Record<string, Transition>;

export type TransitionName = keyof typeof TRANSITIONS;

/** Whether the transition `name` may start from `status`. */
export function allows(name: TransitionName, status: MediaStatus): boolean {
  return (TRANSITIONS[name].from as readonly MediaStatus[]).includes(status);
}

/** Whether some transition moves a media from `from` to `to`. */
export function canMove(from: MediaStatus, to: MediaStatus): boolean {
  return Object.values(TRANSITIONS).some(
    (t) => t.to === to && (t.from as readonly MediaStatus[]).includes(from),
  );
}

/** A transition's guard as SQL: `status IN ('UPLOADED', 'PROCESSING')` (constants only, no input). */
export function statusGuard(name: TransitionName, column = 'status'): string {
  return `${column} IN (${TRANSITIONS[name].from.map((s) => `'${s}'`).join(', ')})`;
}

export interface FailureSpec {
  /**
   * The worker tries again by itself before it gives up (`processing_error`, recorded as the
   * attempt's `lastError`). Every other code is final: a retry would end the same way, so the
   * media is FAILED at once (CONTRACTS.md "Failure codes", column "retried?").
   */
  readonly retryable: boolean;
  /** The message a client reads when the failure has nothing more specific to say. */
  readonly message: string;
}

/** The one table of codes a media's `error` (and `lastError`) can name. */
export const FAILURES = {
  // ---- the upload (PENDING → FAILED): no verified bytes, so upload again ----
  cancelled: { retryable: false, message: 'The upload was cancelled.' },
  checksum_mismatch: { retryable: false, message: 'sha256 mismatch' },
  upload_expired: {
    retryable: false,
    message: 'The upload session expired before the upload was completed.',
  },
  // ---- completion and processing ----
  type_mismatch: { retryable: false, message: 'The file content does not match the declared type.' },
  integrity: { retryable: false, message: 'The stored bytes do not match the verified sha256.' },
  decode_failed: { retryable: false, message: 'The file cannot be decoded.' },
  image_too_large: { retryable: false, message: 'The image has more pixels than allowed.' },
  unsupported_type: { retryable: false, message: 'This file type is not supported on this installation.' },
  ffmpeg_missing: { retryable: false, message: 'ffmpeg is not installed' },
  no_video: {
    retryable: false,
    message: 'The file has no video stream (audio-only files are not processed).',
  },
  video_too_long: { retryable: false, message: 'The video is longer than allowed.' },
  video_too_large: { retryable: false, message: 'The video has more pixels per frame than allowed.' },
  timeout: { retryable: false, message: 'Video processing did not finish in time.' },
  original_archived: {
    retryable: false,
    message:
      // eslint-disable-next-line no-restricted-syntax -- the restore path, as in ./archive.ts restorePath
      'The original is in archive storage: restore it (POST /api/v1/media/{id}/restore), then retry processing.',
  },
  // ---- malware scanning (MALWARE_SCAN=clamd) ----
  malware_detected: {
    retryable: false,
    message: 'The file was identified as malware and quarantined; it is not served.',
  },
  too_large_to_scan: {
    retryable: false,
    message: 'The file is larger than the malware scanner accepts, so it is not served.',
  },
  processing_error: { retryable: true, message: 'A temporary error interrupted processing.' },
  processing_failed: { retryable: false, message: 'Processing failed after every attempt.' },
  // ---- found later ----
  storage_missing: { retryable: false, message: 'The stored original is missing; upload it again.' },
} as const satisfies Record<string, FailureSpec>;

export type FailureCode = keyof typeof FAILURES;

/** How an upload ends without verified bytes (TRANSITIONS.failUpload). */
export type UploadFailureCode = Extract<
  FailureCode,
  'cancelled' | 'checksum_mismatch' | 'upload_expired' | 'type_mismatch'
>;
/** The image job's final outcomes. */
export type ImageFailureCode = Extract<
  FailureCode,
  | 'integrity'
  | 'type_mismatch'
  | 'unsupported_type'
  | 'decode_failed'
  | 'image_too_large'
  | 'original_archived'
>;
/** The video job's final outcomes. */
export type VideoFailureCode = Extract<
  FailureCode,
  | 'ffmpeg_missing'
  | 'integrity'
  | 'type_mismatch'
  | 'decode_failed'
  | 'no_video'
  | 'video_too_long'
  | 'video_too_large'
  | 'timeout'
  | 'original_archived'
>;

/** The malware scan's final outcomes (src/processing/malware-scan.ts). */
export type ScanFailureCode = Extract<FailureCode, 'malware_detected' | 'too_large_to_scan'>;

/** A media's `error` as stored and served. */
export interface MediaFailure<C extends FailureCode = FailureCode> {
  code: C;
  message: string;
}

/** A failure with the table's message unless the caller knows more. */
export function failure<C extends FailureCode>(code: C, message?: string): MediaFailure<C> {
  return { code, message: message ?? FAILURES[code].message };
}

export function isFailureCode(code: string): code is FailureCode {
  return Object.hasOwn(FAILURES, code);
}
