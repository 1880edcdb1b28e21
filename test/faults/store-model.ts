/** The records store.fault.ts keeps of its clients' requests and uploads. */

/** What one request of a store.fault.ts client met. */
export interface Outcome {
  what: string;
  /** HTTP status, 'network' (no answer), 'timeout' (no answer within BOUND_MS). */
  status: number | 'network' | 'timeout';
  retryAfter: boolean;
  ms: number;
  at: number;
  code?: string | undefined;
  /** `error.details.state` of a 409 (COMPLETED: the parts were joined, complete again). */
  state?: string | undefined;
}

/** One logical upload, finished later by repeating its requests. */
export interface Upload {
  device: { id: string; auth: Record<string, string> };
  messageId: string;
  big: boolean;
  mediaId?: string;
  /** `POST /complete` answered 200. */
  acknowledged: boolean;
  /** Bytes stored, completion left to a reader (a client that completes later). */
  staged?: { body: unknown } | undefined;
  /** Given up on by its writer (a failure): only the finish phase touches it again. */
  parked?: boolean;
  /** The last failure a request of this upload met (for the report). */
  lastFail?: string;
}
