import type { Principal } from '../auth/principals.ts';
import type { MediaRow } from './repo.ts';

/**
 * Who may see a photo's location: the owning user only (the uploader, or the owner of the uploading
 * device). Devices, and anyone the media may later be shared with, get no GPS: a camera's API key
 * is a weaker credential than its owner's login, and a location history is sensitive.
 */
export function canSeeLocation(
  p: Principal | null,
  m: Pick<MediaRow, 'owner_user_id' | 'device_owner_user_id'>,
): boolean {
  if (p === null || p.kind !== 'user') return false;
  return m.owner_user_id === p.userId || m.device_owner_user_id === p.userId;
}
