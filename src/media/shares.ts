/**
 * What the media and post use cases ask of sharing (implemented by src/circles): whether a user
 * who does not own a media or post may view it because it was shared with a circle of theirs.
 * Asked on every read, never cached, so removing a member takes effect at once.
 */
export interface ShareGrant {
  /** The original as uploaded may be downloaded (EXIF included); else record, variants and HLS. */
  originals: boolean;
}

export interface ShareLookup {
  mediaGrant(userId: string, mediaId: string): Promise<ShareGrant | undefined>;
  postGrant(userId: string, postId: string): Promise<ShareGrant | undefined>;
}

/** Uploading straight into a circle (`circleId` on a new session). */
export interface CircleUploads {
  /** Throws 404 unless the user is the circle's owner or a member (checked before the session). */
  admitUpload(userId: string, circleId: string): Promise<void>;
  /** Shares the new media with the circle (idempotent: a replay shares it again, harmlessly). */
  shareUpload(userId: string, circleId: string, mediaId: string): Promise<void>;
}
