import { Type, type Static } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Config } from '../../config.ts';
import type { DeviceRow } from '../../devices/repo.ts';
import type { DeviceService } from '../../devices/service.ts';
import { perPrincipalRateLimit, principalOf, type registerAuth } from '../auth.ts';
import {
  ClaimDeviceBody,
  ClaimDone,
  ClaimPending,
  ClaimStarted,
  CreateDeviceBody,
  DeviceList,
  DeviceOrMeParams,
  DeviceView,
  DeviceWithKey,
  errors,
  ListDevicesQuery,
  OwnedDeviceParams,
  PollClaimBody,
  RotateKeyBody,
  StartClaimBody,
  UpdateDeviceBody,
} from '../schemas.ts';

export interface DeviceRouteDeps {
  devices: DeviceService;
  auth: ReturnType<typeof registerAuth>;
  config: Pick<Config, 'rateLimit'>;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);
const toDeviceView = (d: DeviceRow): Static<typeof DeviceView> => ({
  deviceId: d.id,
  name: d.name,
  ownerUserId: d.owner_user_id,
  createdAt: d.created_at.toISOString(),
  revokedAt: iso(d.revoked_at),
  lastSeenAt: iso(d.last_seen_at),
  keyRotatedAt: iso(d.key_rotated_at),
  previousKeyExpiresAt: iso(d.previous_key_expires_at),
  usage: { storedBytes: Number(d.stored_bytes ?? 0), openSessions: d.open_sessions ?? 0 },
});

export const deviceRoutes: FastifyPluginAsyncTypebox<DeviceRouteDeps> = async (
  app,
  { devices, auth, config },
) => {
  const tags = ['devices'];
  const claimLimit = (bucket: string) =>
    perPrincipalRateLimit(bucket, config.rateLimit.deviceClaimsPerMinute);

  app.get(
    '/devices',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Your devices, with last-seen time and usage',
        operationId: 'listDevices',
        tags,
        querystring: ListDevicesQuery,
        response: { 200: DeviceList, ...errors(400, 401, 403) },
      },
    },
    async (request) => ({
      items: (await devices.list(principalOf(request), request.query.includeRevoked)).map(toDeviceView),
    }),
  );

  app.post(
    '/devices',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Create a device you own; its key is in the answer, once',
        operationId: 'createDevice',
        tags,
        body: CreateDeviceBody,
        response: { 201: DeviceWithKey, ...errors(400, 401, 403) },
      },
    },
    async (request, reply) => {
      const { device, apiKey } = await devices.create(principalOf(request), request.body.name);
      void reply.status(201).header('cache-control', 'no-store');
      return { device: toDeviceView(device), apiKey };
    },
  );

  app.get(
    '/devices/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'One device (its owner, or the device itself as `me`)',
        operationId: 'getDevice',
        tags,
        params: DeviceOrMeParams,
        response: { 200: DeviceView, ...errors(400, 401, 404) },
      },
    },
    async (request) => toDeviceView(await devices.get(principalOf(request), request.params.id)),
  );

  app.patch(
    '/devices/:id',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Rename a device or hand it over to another user (its owner)',
        description:
          'Handing over takes effect at once; captures uploaded before stay with the previous owner.',
        operationId: 'updateDevice',
        tags,
        params: OwnedDeviceParams,
        body: UpdateDeviceBody,
        response: { 200: DeviceView, ...errors(400, 401, 404, 409) },
      },
    },
    async (request) =>
      toDeviceView(await devices.update(principalOf(request), request.params.id, request.body)),
  );

  app.post(
    '/devices/:id/revoke',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Revoke a device: its keys stop working on every server at once (its owner)',
        operationId: 'revokeDevice',
        tags,
        params: OwnedDeviceParams,
        response: { 200: DeviceView, ...errors(400, 401, 404) },
      },
      config: { optionalBody: true },
    },
    async (request) => toDeviceView(await devices.revoke(principalOf(request), request.params.id)),
  );

  app.post(
    '/devices/:id/rotate-key',
    {
      onRequest: auth.required,
      schema: {
        summary: 'A new key for a device; the old one keeps working for the overlap (owner or the device)',
        operationId: 'rotateDeviceKey',
        tags,
        params: DeviceOrMeParams,
        body: Type.Union([Type.Null(), RotateKeyBody]),
        response: { 200: DeviceWithKey, ...errors(400, 401, 404, 409) },
      },
      config: { optionalBody: true },
    },
    async (request, reply) => {
      const { device, apiKey } = await devices.rotateKey(
        principalOf(request),
        request.params.id,
        request.body?.overlapSeconds,
      );
      void reply.header('cache-control', 'no-store');
      return { device: toDeviceView(device), apiKey };
    },
  );

  app.post(
    '/devices/claim',
    {
      onRequest: auth.required,
      schema: {
        summary: 'Claim a device by the code it shows; it becomes yours and fetches its own key',
        operationId: 'claimDevice',
        tags,
        body: ClaimDeviceBody,
        response: { 201: DeviceView, ...errors(400, 401, 403, 404, 429) },
      },
      config: { rateLimit: claimLimit('device-claim-enter') },
    },
    async (request, reply) => {
      void reply.status(201);
      return toDeviceView(
        await devices.claim(principalOf(request), request.body.userCode, request.body.name),
      );
    },
  );

  app.post(
    '/device-claims',
    {
      schema: {
        summary: 'A device starts a claim: it shows `userCode` and polls with `deviceCode` (no credentials)',
        operationId: 'startDeviceClaim',
        tags,
        body: StartClaimBody,
        response: { 201: ClaimStarted, ...errors(400, 429) },
      },
      config: { rateLimit: claimLimit('device-claim-start') },
    },
    async (request, reply) => {
      const started = await devices.startClaim(request.body.name);
      void reply.status(201).header('cache-control', 'no-store');
      return { ...started, expiresAt: started.expiresAt.toISOString(), intervalSeconds: 5 };
    },
  );

  app.post(
    '/device-claims/token',
    {
      schema: {
        summary: 'The device polls: 202 while nobody has entered its code, then 200 with its key, once',
        operationId: 'pollDeviceClaim',
        tags,
        body: PollClaimBody,
        response: { 200: ClaimDone, 202: ClaimPending, ...errors(400, 404, 410, 429) },
      },
      config: { rateLimit: perPrincipalRateLimit('device-claim-poll', 60) },
    },
    async (request, reply) => {
      const poll = await devices.pollClaim(request.body.deviceCode);
      void reply.header('cache-control', 'no-store');
      if (poll.status === 'pending') {
        void reply.status(202).header('retry-after', String(poll.intervalSeconds));
        return { ...poll, expiresAt: poll.expiresAt.toISOString() };
      }
      return poll;
    },
  );
};
