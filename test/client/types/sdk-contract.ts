/**
 * Type-level proof that the SDK speaks the server's contract: every wire type the SDK exports, and
 * what its methods take and return, is exactly the `Static` type of the schema the server
 * declares for that route (src/contract). Checked by `tsc` (npm run lint, and
 * test/client/sdk-types.test.ts, which also shows that a drifted type fails).
 */
import type { Static, TSchema } from '@sinclair/typebox';
import type * as SDK from '../../../src/client/index.ts';
import type * as C from '../../../src/contract/index.ts';

/** True only when A and B are the same type (not merely assignable either way). */
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** The SDK type `A` is the wire type of `S`. */
export type Is<A, S extends TSchema> = Equal<A, Static<S>>;

type Client = SDK.MediaryClient;
type Returns<K extends keyof Client> = Client[K] extends (...args: never[]) => Promise<infer R> ? R : never;

export const exportedTypes = {
  MediaView: true,
  VariantView: true,
  HlsView: true,
  GpsView: true,
  MediaStatus: true,
  SingleUpload: true,
  MultipartUpload: true,
  SessionResponse: true,
  CreateSessionInput: true,
  PartUrl: true,
  StoredPart: true,
  PartListing: true,
  StatusView: true,
  MediaPage: true,
  ListQuery: true,
  SignedUrl: true,
  UsageView: true,
  PostView: true,
  CircleView: true,
  ShareView: true,
  CircleList: true,
  PostPage: true,
  ProfileImageView: true,
  ProfileImageVariant: true,
  SetProfileImageInput: true,
  ErrorBody: true,
} as const satisfies {
  MediaView: Is<SDK.MediaView, typeof C.MediaView>;
  VariantView: Is<SDK.VariantView, typeof C.VariantView>;
  HlsView: Is<SDK.HlsView, typeof C.HlsView>;
  GpsView: Is<SDK.GpsView, typeof C.GpsView>;
  MediaStatus: Is<SDK.MediaStatus, typeof C.MediaStatusSchema>;
  SingleUpload: Is<SDK.SingleUpload, typeof C.PutInstructions>;
  MultipartUpload: Is<SDK.MultipartUpload, typeof C.MultipartInstructions>;
  SessionResponse: Is<SDK.SessionResponse, typeof C.SessionResponse>;
  CreateSessionInput: Is<SDK.CreateSessionInput, typeof C.CreateSessionBody>;
  PartUrl: Is<SDK.PartUrl, typeof C.PartUrl>;
  StoredPart: Is<SDK.StoredPart, typeof C.StoredPart>;
  PartListing: Is<SDK.PartListing, typeof C.PartListing>;
  StatusView: Is<SDK.StatusView, typeof C.StatusResponse>;
  MediaPage: Is<SDK.MediaPage, typeof C.ListResponse>;
  ListQuery: Is<SDK.ListQuery, typeof C.ListQuery>;
  SignedUrl: Is<SDK.SignedUrl, typeof C.SignedUrlBody>;
  UsageView: Is<SDK.UsageView, typeof C.UsageView>;
  PostView: Is<SDK.PostView, typeof C.PostView>;
  CircleView: Is<SDK.CircleView, typeof C.CircleView>;
  ShareView: Is<SDK.ShareView, typeof C.ShareView>;
  CircleList: Is<SDK.CircleList, typeof C.CircleList>;
  PostPage: Is<SDK.PostPage, typeof C.PostPage>;
  ProfileImageView: Is<SDK.ProfileImageView, typeof C.ProfileImageView>;
  ProfileImageVariant: Is<SDK.ProfileImageVariant, typeof C.ProfileImageVariant>;
  SetProfileImageInput: Is<SDK.SetProfileImageInput, typeof C.SetProfileImageBody>;
  ErrorBody: Is<SDK.ErrorBody, typeof C.ErrorBody>;
};

/** What the client's methods return is what the server's routes declare (the 2xx JSON schema). */
export const methods = {
  createSession: true,
  createSessionInput: true,
  get: true,
  status: true,
  complete: true,
  signParts: true,
  listParts: true,
  cancel: true,
  listDeviceMedia: true,
  listUserMedia: true,
  listQuery: true,
} as const satisfies {
  createSession: Equal<Returns<'createSession'>, Static<typeof C.SessionResponse> & { created: boolean }>;
  createSessionInput: Is<Parameters<Client['createSession']>[0], typeof C.CreateSessionBody>;
  get: Is<Returns<'get'>, typeof C.MediaView>;
  status: Is<Returns<'status'>, typeof C.StatusResponse>;
  complete: Is<Returns<'complete'>, typeof C.MediaView>;
  signParts: Is<Returns<'signParts'>, typeof C.SignPartsResponse>;
  listParts: Is<Returns<'listParts'>, typeof C.PartListing>;
  cancel: Is<Returns<'cancel'>, typeof C.MediaView>;
  listDeviceMedia: Is<Returns<'listDeviceMedia'>, typeof C.ListResponse>;
  listUserMedia: Is<Returns<'listUserMedia'>, typeof C.ListResponse>;
  listQuery: Is<NonNullable<Parameters<Client['listDeviceMedia']>[1]>, typeof C.ListQuery>;
};

/** The resource APIs (`client.posts`, `.circles`, `.usage`, `.profile`): answers and inputs per route. */
type Of<T, K extends keyof T> = T[K] extends (...args: never[]) => Promise<infer R> ? R : never;
type Args<T, K extends keyof T> = T[K] extends (...args: infer A) => unknown ? A : never;
type Posts = Client['posts'];
type Circles = Client['circles'];
type Usage = Client['usage'];
type Profile = Client['profile'];
type Devices = Client['devices'];

export const resourceMethods = {
  postsCreate: true,
  postsCreateInput: true,
  postsGet: true,
  postsUpdate: true,
  postsUpdateInput: true,
  postsList: true,
  postsListQuery: true,
  circlesCreate: true,
  circlesCreateInput: true,
  circlesList: true,
  circlesGet: true,
  circlesAddMember: true,
  circlesShare: true,
  circlesShareInput: true,
  circlesMedia: true,
  circlesMediaQuery: true,
  usageUser: true,
  usageDevice: true,
  profileSet: true,
  profileGet: true,
  profileImageUrl: true,
  profileImageSize: true,
  devicesList: true,
  devicesCreate: true,
  devicesGet: true,
  devicesUpdate: true,
  devicesUpdateInput: true,
  devicesRevoke: true,
  devicesRotateKey: true,
  devicesRotateKeyInput: true,
  devicesClaim: true,
  devicesClaimInput: true,
} as const satisfies {
  postsCreate: Equal<Of<Posts, 'create'>, Static<typeof C.PostView> & { created: boolean }>;
  postsCreateInput: Is<Args<Posts, 'create'>[0], typeof C.CreatePostBody>;
  postsGet: Is<Of<Posts, 'get'>, typeof C.PostView>;
  postsUpdate: Is<Of<Posts, 'update'>, typeof C.PostView>;
  postsUpdateInput: Is<Args<Posts, 'update'>[1], typeof C.UpdatePostBody>;
  postsList: Is<Of<Posts, 'list'>, typeof C.PostPage>;
  postsListQuery: Is<NonNullable<Args<Posts, 'list'>[1]>, typeof C.PostListQuery>;
  circlesCreate: Is<Of<Circles, 'create'>, typeof C.CircleView>;
  circlesCreateInput: Is<Args<Circles, 'create'>[0], typeof C.CreateCircleBody>;
  circlesList: Is<Of<Circles, 'list'>, typeof C.CircleList>;
  circlesGet: Is<Of<Circles, 'get'>, typeof C.CircleView>;
  circlesAddMember: Is<Of<Circles, 'addMember'>, typeof C.CircleView>;
  circlesShare: Is<Of<Circles, 'share'>, typeof C.ShareView>;
  circlesShareInput: Is<Args<Circles, 'share'>[1], typeof C.ShareBody>;
  circlesMedia: Is<Of<Circles, 'media'>, typeof C.ListResponse>;
  circlesMediaQuery: Is<NonNullable<Args<Circles, 'media'>[1]>, typeof C.CircleMediaQuery>;
  usageUser: Is<Of<Usage, 'user'>, typeof C.UsageView>;
  usageDevice: Is<Of<Usage, 'device'>, typeof C.UsageView>;
  profileSet: Equal<Of<Profile, 'set'>, Static<typeof C.ProfileImageView> & { swapped: boolean }>;
  profileGet: Is<Of<Profile, 'get'>, typeof C.ProfileImageView>;
  profileImageUrl: Is<Of<Profile, 'imageUrl'>, typeof C.SignedUrlBody>;
  profileImageSize: Equal<
    NonNullable<Args<Profile, 'imageUrl'>[1]>,
    NonNullable<Static<typeof C.ProfileImageQuery>['size']>
  >;
  devicesList: Is<Of<Devices, 'list'>, typeof C.DeviceList>;
  devicesCreate: Is<Of<Devices, 'create'>, typeof C.DeviceWithKey>;
  devicesGet: Is<Of<Devices, 'get'>, typeof C.DeviceView>;
  devicesUpdate: Is<Of<Devices, 'update'>, typeof C.DeviceView>;
  devicesUpdateInput: Is<Args<Devices, 'update'>[1], typeof C.UpdateDeviceBody>;
  devicesRevoke: Is<Of<Devices, 'revoke'>, typeof C.DeviceView>;
  devicesRotateKey: Is<Of<Devices, 'rotateKey'>, typeof C.DeviceWithKey>;
  devicesRotateKeyInput: Is<NonNullable<Args<Devices, 'rotateKey'>[1]>, typeof C.RotateKeyBody>;
  devicesClaim: Is<Of<Devices, 'claim'>, typeof C.DeviceView>;
  devicesClaimInput: Is<Args<Devices, 'claim'>[0], typeof C.ClaimDeviceBody>;
};
