/**
 * The SDK's methods beyond uploads, one small class per resource, reached from the client as
 * `client.posts`, `client.circles`, `client.usage` and `client.profile`. Each method is one JSON
 * request typed by the contract (src/contract, through ./types.ts), with the client's retries.
 */
import type { MediaryClient, RequestOptions } from './api.ts';
import type {
  ClaimDeviceInput,
  DeviceList,
  DeviceView,
  DeviceWithKey,
  RotateKeyInput,
  UpdateDeviceInput,
  CircleList,
  CircleMediaQuery,
  CircleView,
  CreateCircleInput,
  CreatePostInput,
  MediaPage,
  PostListQuery,
  PostPage,
  PostView,
  ProfileImageSize,
  ProfileImageView,
  ShareInput,
  ShareView,
  SignedUrl,
  UpdatePostInput,
  UsageView,
} from './types.ts';

const seg = encodeURIComponent;

export function query(q: Record<string, string | number | boolean | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** Posts: a caption and an ordered list of your media (users only). */
export class PostsApi {
  constructor(private readonly c: MediaryClient) {}

  /** Creates a post; the same `idempotencyKey` again answers the same post (`created: false`). */
  async create(
    input: CreatePostInput,
    opts: RequestOptions & { idempotencyKey?: string } = {},
  ): Promise<PostView & { created: boolean }> {
    const headers = { ...opts.headers };
    if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
    const { res, data } = await this.c.jsonWithStatus<PostView>('POST', '/posts', input, {
      ...opts,
      headers,
    });
    return { ...data, created: res.status === 201 };
  }

  get(postId: string, opts?: RequestOptions): Promise<PostView> {
    return this.c.json('GET', `/posts/${seg(postId)}`, undefined, opts);
  }

  /** A new caption and/or the whole media list in its new order; `version` refuses stale edits. */
  update(postId: string, change: UpdatePostInput, opts?: RequestOptions): Promise<PostView> {
    return this.c.json('PATCH', `/posts/${seg(postId)}`, change, opts);
  }

  /** Deletes the post and its media. */
  async delete(postId: string, opts?: RequestOptions): Promise<void> {
    await this.c.json('DELETE', `/posts/${seg(postId)}`, undefined, opts);
  }

  /** A user's posts (`me`: yours), newest first; pass `nextCursor` back as `cursor`. */
  list(userId = 'me', q: PostListQuery = {}, opts?: RequestOptions): Promise<PostPage> {
    return this.c.json('GET', `/users/${seg(userId)}/posts${query(q)}`, undefined, opts);
  }
}

/** Circles: people you share media and posts with. */
export class CirclesApi {
  constructor(private readonly c: MediaryClient) {}

  create(input: CreateCircleInput, opts?: RequestOptions): Promise<CircleView> {
    return this.c.json('POST', '/circles', input, opts);
  }

  /** Circles you own or are a member of. */
  list(opts?: RequestOptions): Promise<CircleList> {
    return this.c.json('GET', '/circles', undefined, opts);
  }

  get(circleId: string, opts?: RequestOptions): Promise<CircleView> {
    return this.c.json('GET', `/circles/${seg(circleId)}`, undefined, opts);
  }

  async delete(circleId: string, opts?: RequestOptions): Promise<void> {
    await this.c.json('DELETE', `/circles/${seg(circleId)}`, undefined, opts);
  }

  addMember(circleId: string, userId: string, opts?: RequestOptions): Promise<CircleView> {
    return this.c.json('POST', `/circles/${seg(circleId)}/members`, { userId }, opts);
  }

  /** Removes a member (or yourself: leaving); their access ends at once. */
  async removeMember(circleId: string, userId: string, opts?: RequestOptions): Promise<void> {
    await this.c.json('DELETE', `/circles/${seg(circleId)}/members/${seg(userId)}`, undefined, opts);
  }

  /** Shares a media or a post of yours with the circle. */
  share(circleId: string, input: ShareInput, opts?: RequestOptions): Promise<ShareView> {
    return this.c.json('POST', `/circles/${seg(circleId)}/shares`, input, opts);
  }

  async unshare(circleId: string, shareId: string, opts?: RequestOptions): Promise<void> {
    await this.c.json('DELETE', `/circles/${seg(circleId)}/shares/${seg(shareId)}`, undefined, opts);
  }

  /** The media shared with the circle, paged. */
  media(circleId: string, q: CircleMediaQuery = {}, opts?: RequestOptions): Promise<MediaPage> {
    return this.c.json('GET', `/circles/${seg(circleId)}/media${query(q)}`, undefined, opts);
  }
}

/** Storage use and quotas. */
export class UsageApi {
  constructor(private readonly c: MediaryClient) {}

  /** A user's use (`me`: yours). */
  user(userId = 'me', opts?: RequestOptions): Promise<UsageView> {
    return this.c.json('GET', `/users/${seg(userId)}/usage`, undefined, opts);
  }

  /** A device's use (the device itself, or its owner). */
  device(deviceId: string, opts?: RequestOptions): Promise<UsageView> {
    return this.c.json('GET', `/devices/${seg(deviceId)}/usage`, undefined, opts);
  }
}

/** Profile images: upload an image with `purpose: "profile"`, then `set` it. */
export class ProfileApi {
  constructor(private readonly c: MediaryClient) {}

  /**
   * Sets your profile image. `swapped`: it replaced the current one now (it was READY); else it
   * is `pending` and replaces it once READY (or is dropped if it fails).
   */
  async set(mediaId: string, opts?: RequestOptions): Promise<ProfileImageView & { swapped: boolean }> {
    const { res, data } = await this.c.jsonWithStatus<ProfileImageView>(
      'PUT',
      '/profile/image',
      { mediaId },
      opts,
    );
    return { ...data, swapped: res.status === 200 };
  }

  /** A user's profile image with signed URLs of its squares (`me`: yours, with `pending`). */
  get(userId = 'me', opts?: RequestOptions): Promise<ProfileImageView> {
    return this.c.json('GET', `/users/${seg(userId)}/profile`, undefined, opts);
  }

  /** A signed URL of one square of a user's current image. */
  imageUrl(userId = 'me', size: ProfileImageSize = 300, opts?: RequestOptions): Promise<SignedUrl> {
    return this.c.json(
      'GET',
      `/users/${seg(userId)}/profile-image${query({ size, mode: 'url' })}`,
      undefined,
      opts,
    );
  }

  /** Removes your profile image (its media are deleted). */
  async remove(opts?: RequestOptions): Promise<void> {
    await this.c.json('DELETE', '/profile/image', undefined, opts);
  }
}

/** Your devices (users): list, add, rename, hand over, revoke, rotate keys, claim by code. */
export class DevicesApi {
  constructor(private readonly c: MediaryClient) {}

  list(q: { includeRevoked?: boolean } = {}, opts?: RequestOptions): Promise<DeviceList> {
    return this.c.json('GET', `/devices${query(q)}`, undefined, opts);
  }

  /** A new device of yours; its `apiKey` is shown this once. */
  create(name: string, opts?: RequestOptions): Promise<DeviceWithKey> {
    return this.c.json('POST', '/devices', { name }, opts);
  }

  /** A device of yours, or (with a device key) `me`: the calling device. */
  get(deviceId: string, opts?: RequestOptions): Promise<DeviceView> {
    return this.c.json('GET', `/devices/${seg(deviceId)}`, undefined, opts);
  }

  /** Renames it and/or hands it over to another user (`ownerUserId`). */
  update(deviceId: string, change: UpdateDeviceInput, opts?: RequestOptions): Promise<DeviceView> {
    return this.c.json('PATCH', `/devices/${seg(deviceId)}`, change, opts);
  }

  revoke(deviceId: string, opts?: RequestOptions): Promise<DeviceView> {
    return this.c.json('POST', `/devices/${seg(deviceId)}/revoke`, {}, opts);
  }

  /** A new key (shown this once); the replaced one keeps working for `overlapSeconds`. */
  rotateKey(deviceId: string, input: RotateKeyInput = {}, opts?: RequestOptions): Promise<DeviceWithKey> {
    return this.c.json('POST', `/devices/${seg(deviceId)}/rotate-key`, input, opts);
  }

  /** Claims the device showing `userCode` (see `claimDevice` for the device's side). */
  claim(input: ClaimDeviceInput, opts?: RequestOptions): Promise<DeviceView> {
    return this.c.json('POST', '/devices/claim', input, opts);
  }
}
