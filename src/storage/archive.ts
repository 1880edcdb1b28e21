/**
 * Archive storage classes: objects a store keeps but cannot serve until they are restored
 * (S3 GLACIER / DEEP_ARCHIVE, Intelligent-Tiering's archive tiers). Only originals are ever
 * moved there by Mediary's own lifecycle rule (docs/DEPLOY-TIERING.md); stores whose cold classes
 * stay readable (Ceph storage classes, R2 Infrequent Access, GCS Archive) never report `archived`.
 */

/**
 * - `readable`: a GET works now (whatever the storage class);
 * - `archived`: a GET fails until the object is restored;
 * - `restoring`: a restore was asked for and has not finished;
 * - `restored`: a temporary readable copy exists until `restoredUntil`.
 */
export type ArchiveState = 'readable' | 'archived' | 'restoring' | 'restored';

export interface ArchiveStatus {
  state: ArchiveState;
  /** As the store names it (`STANDARD` when it names none). */
  storageClass: string;
  /** When a restored copy expires (only for `restored`). */
  restoredUntil: Date | null;
}

/** What a store with archive classes offers on top of {@link ObjectStore}. */
export interface ArchiveOps {
  /**
   * Marks an original for the archive lifecycle rule (an object tag); a no-op when the rule is not
   * configured. Best effort for the caller: an unmarked original is simply never archived.
   */
  markOriginal(key: string): Promise<void>;
  /**
   * Whether an object written at `writtenAt` can have been moved to an archive class by the
   * configured rule yet (false when no rule is configured): reads of younger objects skip the check.
   */
  mayBeArchived(writtenAt: Date, now?: Date): boolean;
  /** Where the object stands; undefined when it does not exist. */
  status(key: string): Promise<ArchiveStatus | undefined>;
  /** Asks the store for a readable copy (when archived); the status after asking. */
  restore(key: string): Promise<ArchiveStatus | undefined>;
}

/** A read found the object in an archive class: it must be restored first (S3 InvalidObjectState). */
export class ObjectArchivedError extends Error {
  override readonly name = 'ObjectArchivedError';
  constructor(
    readonly key: string,
    options?: { cause?: unknown },
  ) {
    super(`The object ${key} is in an archive storage class; restore it before reading.`, options);
  }
}
