/**
 * Wire types of the Mediary API (see docs/CONTRACTS.md), derived from the server's own schemas in
 * src/contract: `Static<typeof Schema>` of the very schemas the server validates with and the
 * OpenAPI document is generated from, so they cannot drift. Type-only imports: no schema and no
 * TypeBox code reaches the SDK's bundles (test/client/bundle.test.ts checks).
 */
import type { Static } from '@sinclair/typebox';
import type * as C from '../contract/index.ts';

export type { MediaStatus } from '../contract/statuses.ts';

/** A media record as the caller may see it (`gps` and `storageUri` only for the owning user). */
export type MediaView = Static<typeof C.MediaView>;
export type VariantView = Static<typeof C.VariantView>;
export type RenditionView = Static<typeof C.RenditionView>;
export type HlsView = Static<typeof C.HlsView>;
export type GpsView = Static<typeof C.GpsView>;
export type MediaPurpose = Static<typeof C.MediaPurposeSchema>;

/** `upload` of a session for a single PUT. */
export type SingleUpload = Static<typeof C.PutInstructions>;
/** `upload` of a session above the multipart threshold: ask for part URLs. */
export type MultipartUpload = Static<typeof C.MultipartInstructions>;
export type SessionResponse = Static<typeof C.SessionResponse>;
/** The body of `POST /media`. */
export type CreateSessionInput = Static<typeof C.CreateSessionBody>;
/** The answer of `PUT /media/{id}/upload` (local store). */
export type UploadBytesResponse = Static<typeof C.UploadResponse>;

export type PartUrl = Static<typeof C.PartUrl>;
export type StoredPart = Static<typeof C.StoredPart>;
export type PartListing = Static<typeof C.PartListing>;
export type CompleteInput = Static<typeof C.CompleteBody>;

export type StatusView = Static<typeof C.StatusResponse>;
export type MediaPage = Static<typeof C.ListResponse>;
export type ListQuery = Static<typeof C.ListQuery>;
/** `?mode=url` of a download or variant: a signed URL as JSON. */
export type SignedUrl = Static<typeof C.SignedUrlBody>;
export type UsageView = Static<typeof C.UsageView>;

export type PostView = Static<typeof C.PostView>;
export type PostPage = Static<typeof C.PostPage>;
export type CreatePostInput = Static<typeof C.CreatePostBody>;
export type UpdatePostInput = Static<typeof C.UpdatePostBody>;

export type CircleView = Static<typeof C.CircleView>;
export type ShareView = Static<typeof C.ShareView>;
export type ShareInput = Static<typeof C.ShareBody>;

/** Every error response: `{error: {code, message, details?, requestId}}`. */
export type ErrorBody = Static<typeof C.ErrorBody>;

/** A device as its owner sees it (`GET /devices`). */
export type DeviceView = Static<typeof C.DeviceView>;
/** A new device or a rotated key: the key is shown this once. */
export type DeviceWithKey = Static<typeof C.DeviceWithKey>;
/** `POST /device-claims`: the codes a claiming device shows and polls with. */
export type ClaimStarted = Static<typeof C.ClaimStarted>;
/** `POST /device-claims/token` once the owner entered the code: the device's key, once. */
export type ClaimedDevice = Static<typeof C.ClaimDone>;
/** `POST /device-claims/token` while nobody has entered the code yet. */
export type ClaimPending = Static<typeof C.ClaimPending>;
