/** The shapes the media use cases take and give (see service.ts). */
import type { Queryable } from '../db/pool.ts';
import type { OpenableObject } from '../storage/types.ts';
import type { MediaType } from './catalog.ts';
import type { MultipartInstructions } from './multipart.ts';
import type { MediaPurpose, MediaRow } from './repo.ts';

export interface CreateSessionInput {
  fileName: string;
  mimeType: string;
  bytes: number;
  sha256?: string | undefined;
  mediaType?: MediaType | undefined;
  deviceId?: string | undefined;
  cameraId?: string | undefined;
  capturedAt?: string | undefined;
  reason?: string | undefined;
  messageId?: string | undefined;
  purpose?: MediaPurpose | undefined;
  /** Users: share the new media with this circle of theirs at once. */
  circleId?: string | undefined;
}

/** A single PUT; files above the multipart threshold get `MultipartInstructions` instead. */
export type UploadInstructions = PutInstructions | MultipartInstructions;

export interface PutInstructions {
  method: 'PUT';
  url: string;
  headers: Record<string, string>;
  expiresAt: string;
}

export interface SessionResult {
  created: boolean;
  media: MediaRow;
  upload: UploadInstructions | null;
}

/** Enqueues background processing inside the completing transaction. */
export interface ProcessingQueue {
  /** `lane`: the media's type; images and videos queue apart (src/processing/ports.ts, `Lane`). */
  enqueueProcessing(tx: Queryable, mediaId: string, lane: MediaType): Promise<void>;
}

/** `redirect`: a 302 to the signed URL; `url`: the signed URL as JSON; `proxy`: the bytes. */
export type DeliveryMode = 'redirect' | 'url' | 'proxy';

/** How to deliver stored bytes: a signed URL (as a 302 or as JSON), or the bytes to stream. */
export type DownloadPlan =
  | { kind: 'redirect'; url: string; expiresAt: Date }
  | { kind: 'url'; url: string; expiresAt: Date }
  | ({ kind: 'stream' } & OpenableObject);
