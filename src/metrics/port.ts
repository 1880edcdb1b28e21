/**
 * What the rest of Mediary reports to metrics: one call per event, named after the event, with
 * label values from fixed sets (a backend, a failure code of the one table, an operation name),
 * never an id. The domain knows only this port; `src/metrics/prometheus.ts` implements it with
 * prom-client (eslint keeps prom-client out of the domain). {@link NO_METRICS} when metrics are off.
 *
 * No imports: every layer may depend on it.
 */

export type StoreBackend = 'local' | 's3' | 'gcs';
export type MediaKind = 'image' | 'video';

/** How a processing attempt ended, as the worker sees it. */
export type ProcessingOutcome =
  /** READY. */
  | 'completed'
  /** FAILED for a reason no retry changes (the failure code is reported apart). */
  | 'failed'
  /** Nothing to do (the media was gone or had moved on). */
  | 'skipped'
  /** Threw: retried, or dead-lettered after the last attempt. */
  | 'error'
  /** Ran past its time limit. */
  | 'timeout'
  /** The media was deleted while it ran. */
  | 'cancelled'
  /** Aborted otherwise (the worker shut down). */
  | 'aborted';

/** What `complete` found wrong with the stored bytes (it answers 4xx, the client may try again). */
export type VerificationFailure =
  'object_missing' | 'upload_incomplete' | 'checksum_mismatch' | 'type_mismatch';

/** One delivery attempt of a webhook. */
export type WebhookAttemptOutcome = 'succeeded' | 'retrying' | 'given_up';

/** How one malware scan of an original ended (MALWARE_SCAN=clamd). */
export type MalwareScanOutcome = 'clean' | 'infected' | 'too_large' | 'unavailable';

/** The ObjectStore calls the store wrapper times (src/metrics/store.ts). */
export type StoreOperation =
  | 'put'
  | 'get'
  | 'readAll'
  | 'stat'
  | 'delete'
  | 'signedGetUrl'
  | 'presignPut'
  | 'adoptFile'
  | 'createMultipart'
  | 'presignPart'
  | 'putPart'
  | 'listParts'
  | 'completeMultipart'
  | 'abortMultipart'
  | 'listMultipartUploads'
  | 'listObjects'
  | 'setup';

/** `ok`; `rejected`: the caller's bytes or a create-only conflict (not the store's fault); `error`. */
export type StoreOutcome = 'ok' | 'rejected' | 'error';

export interface Metrics {
  /** An HTTP request ended. `route` is the route pattern (`/api/v1/media/:id`), never the URL. */
  httpRequest(method: string, route: string, status: number, seconds: number): void;
  /** A new upload session (not an idempotent replay). */
  sessionCreated(backend: StoreBackend, kind: MediaKind): void;
  /** An upload passed verification (PENDING → UPLOADED); `bytes` is its size. */
  uploadCompleted(backend: StoreBackend, bytes: number): void;
  /** An upload ended without verified bytes (PENDING → FAILED); `reason` is its failure code. */
  uploadFailed(backend: StoreBackend, reason: string): void;
  /** `complete` refused the stored bytes. */
  verificationFailed(backend: StoreBackend, kind: VerificationFailure): void;
  /**
   * A processing attempt ended. `kind` is undefined when the media was gone before its type was
   * read; `failure` is the failure code when `outcome` is `failed`.
   */
  processingFinished(
    kind: MediaKind | undefined,
    outcome: ProcessingOutcome,
    seconds: number,
    failure?: string,
  ): void;
  /**
   * `count` jobs (1 unless said) used up their attempts and were read from the dead-letter queue.
   * A worker reports 0 at start, so the series exists before the first one (for `increase()`).
   */
  jobDeadLettered(queue: string, count?: number): void;
  /** One ObjectStore call. */
  storeOperation(
    backend: StoreBackend,
    operation: StoreOperation,
    outcome: StoreOutcome,
    seconds: number,
  ): void;
  /** One webhook delivery attempt. */
  webhookAttempt(outcome: WebhookAttemptOutcome, seconds: number): void;
  /** One malware scan of an original; `unavailable`: clamd did not answer (the job retries). */
  malwareScan(outcome: MalwareScanOutcome): void;
}

const nothing = () => undefined;

/** Metrics off: every call does nothing. */
export const NO_METRICS: Metrics = {
  httpRequest: nothing,
  sessionCreated: nothing,
  uploadCompleted: nothing,
  uploadFailed: nothing,
  verificationFailed: nothing,
  processingFinished: nothing,
  jobDeadLettered: nothing,
  storeOperation: nothing,
  webhookAttempt: nothing,
  malwareScan: nothing,
};
