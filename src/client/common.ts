/** What both entries (browser and Node) export. */
export {
  MediaryClient,
  principalOf,
  type ClientOptions,
  type Credential,
  type RequestOptions,
  type WaitOptions,
} from './api.ts';
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
  sniffMimeType,
  headOf,
  chunksOf,
  type ByteSource,
  type Sha256,
  type Sha256Factory,
} from './source.ts';
export { MemoryStateStore, IndexedDBStateStore, type StateStore, type UploadState } from './state.ts';
export { browserTransport, type Transport, type PutRequest, type PutResponse } from './transport.ts';
export { PauseGate } from './pause.ts';
export {
  runUpload,
  withControls,
  type Platform,
  type UploadControls,
  type UploadOptions,
  type UploadResult,
  type UploadTask,
} from './upload.ts';
export type * from './types.ts';
export { claimDevice, type ClaimOptions, type ClaimedDevice } from './claim.ts';
export { CirclesApi, DevicesApi, PostsApi, ProfileApi, UsageApi } from './resources.ts';
