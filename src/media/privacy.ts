import type { Principal } from '../auth/principals.ts';
import type { MediaRow } from './repo.ts';

/**
 * The user a media belongs to: the one recorded at upload (the uploader, or the owner of the
 * uploading device at that time). Only a capture made while its device had no owner goes to the
 * device's current owner. So a camera that changes hands keeps its earlier captures, and their
 * locations, with the previous owner.
 */
export function owningUser(m: Pick<MediaRow, 'owner_user_id' | 'device_owner_user_id'>): string | null {
  return m.owner_user_id ?? m.device_owner_user_id;
}

/**
 * Who may see a photo's location: the owning user only. Devices, and anyone the media may later be
 * shared with, get no GPS: a camera's API key is a weaker credential than its owner's login, and a
 * location history is sensitive.
 */
export function canSeeLocation(
  p: Principal | null,
  m: Pick<MediaRow, 'owner_user_id' | 'device_owner_user_id'>,
): boolean {
  return p !== null && p.kind === 'user' && owningUser(m) === p.userId;
}

/**
 * Who may see where a media's original is stored (`storageUri`: `gs://bucket/key`, `s3://bucket/key`
 * or the local path): the owning user only, as for the location. It names the bucket and the
 * key layout (or the server's directory) and grants nothing by itself, but devices and the people
 * it is shared with have no use for it.
 */
export const canSeeStoragePointer = canSeeLocation;
