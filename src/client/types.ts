/** Wire types of the Mediary API (see docs/CONTRACTS.md). Plain types: the SDK has no runtime schema. */

export type MediaStatus = 'PENDING' | 'UPLOADED' | 'PROCESSING' | 'READY' | 'FAILED' | 'DELETED';

export interface MediaView {
  mediaId: string;
  status: MediaStatus;
  mediaType: string;
  mimeType: string;
  detectedMimeType: string | null;
  fileName: string;
  bytes: number;
  sha256: string | null;
  ownerUserId: string | null;
  deviceId: string | null;
  cameraId: string | null;
  messageId: string | null;
  capturedAt: string;
  reason: string | null;
  width: number | null;
  height: number | null;
  durationMs: number | null;
  metadata: Record<string, unknown>;
  error: { code: string; message: string } | null;
  storageBackend: string;
  /** Where the original is stored (gs://, s3:// or the local path); only in the owning user's responses. */
  storageUri?: string;
  /** Signed URL of the original, usable without credentials (img/video/fetch) until `urlsExpireAt`. */
  downloadUrl?: string | null;
  urlsExpireAt?: string | null;
  uploadExpiresAt: string | null;
  uploadedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface SingleUpload {
  method: 'PUT';
  url: string;
  headers: Record<string, string>;
  expiresAt: string;
}

export interface MultipartUpload {
  method: 'MULTIPART';
  partSize: number;
  partCount: number;
  expiresAt: string;
}

export interface SessionResponse {
  mediaId: string;
  status: MediaStatus;
  upload: SingleUpload | MultipartUpload | null;
  media: MediaView;
}

export interface CreateSessionInput {
  fileName: string;
  mimeType: string;
  bytes: number;
  sha256?: string;
  mediaType?: 'image' | 'video';
  deviceId?: string;
  cameraId?: string;
  capturedAt?: string;
  reason?: string;
  messageId?: string;
}

export interface PartUrl {
  partNumber: number;
  method: 'PUT';
  url: string;
  headers: Record<string, string>;
  expiresAt: string;
}

export interface StoredPart {
  partNumber: number;
  etag: string;
  size: number;
}

export interface PartListing {
  partSize: number;
  partCount: number;
  parts: StoredPart[];
}

export interface StatusView {
  mediaId: string;
  status: MediaStatus;
  error: { code: string; message: string } | null;
  updatedAt: string;
}

export interface MediaPage {
  items: MediaView[];
  nextCursor: string | null;
}

export interface ListQuery {
  limit?: number;
  cursor?: string;
  cameraId?: string;
  status?: Exclude<MediaStatus, 'DELETED'>;
  since?: string;
  until?: string;
}
