/** What both entries (browser and Node) export. */
export { MediaryClient, type ClientOptions, type RequestOptions, type WaitOptions } from './api.ts';
export {
  MediaryError,
  UploadAbortedError,
  isRetryable,
  parseRetryAfter,
  errorFromResponse,
} from './errors.ts';
export { ProgressTracker, type Progress, type ProgressListener } from './progress.ts';
export { withRetry, backoffDelay, sleep, type RetryOptions } from './retry.ts';
export {
  blobSource,
  hashSource,
  mimeTypeFor,
  chunksOf,
  type ByteSource,
  type Sha256,
  type Sha256Factory,
} from './source.ts';
export { MemoryStateStore, IndexedDBStateStore, type StateStore, type UploadState } from './state.ts';
export { browserTransport, type Transport, type PutRequest, type PutResponse } from './transport.ts';
export { runUpload, type Platform, type UploadOptions, type UploadResult } from './upload.ts';
export type * from './types.ts';
