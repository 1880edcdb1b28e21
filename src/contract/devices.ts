/** Devices their owners manage (list, create, rename, hand over, revoke, rotate keys) and claim codes. */
import { Type } from '@sinclair/typebox';
import { Text, Uuid } from './common.ts';

/** The longest overlap a key rotation may ask for (30 days): the replaced key works until then. */
export const MAX_KEY_OVERLAP_SECONDS = 30 * 24 * 3600;

const DateTime = Type.String({ format: 'date-time' });
const UserId = Type.String({ minLength: 1, maxLength: 200, pattern: '^[^\\u0000]*$' });
const DeviceName = Text({ minLength: 1, maxLength: 200 });
const ApiKey = Type.String({
  description: 'The device API key (`mdk_…`), shown this once: only its hash is stored.',
});
/** RFC 8628's user code: 8 letters shown as XXXX-XXXX (any case, dashes and spaces ignored when typed). */
const UserCode = Type.String({ minLength: 1, maxLength: 32, pattern: '^[A-Za-z \\-]+$' });

export const DeviceView = Type.Object({
  deviceId: Uuid,
  name: Type.String(),
  ownerUserId: Type.Union([Type.String(), Type.Null()]),
  createdAt: DateTime,
  revokedAt: Type.Union([DateTime, Type.Null()]),
  lastSeenAt: Type.Union([DateTime, Type.Null()], {
    description: 'Last authenticated request (to the minute); null if never seen.',
  }),
  keyRotatedAt: Type.Union([DateTime, Type.Null()]),
  previousKeyExpiresAt: Type.Union([DateTime, Type.Null()], {
    description: 'While a rotation’s overlap lasts, the replaced key still works until then.',
  }),
  usage: Type.Object({
    storedBytes: Type.Integer({ description: 'Declared bytes of its media not DELETED or FAILED.' }),
    openSessions: Type.Integer({ description: 'PENDING upload sessions.' }),
  }),
});

export const DeviceList = Type.Object({ items: Type.Array(DeviceView) });
export const DeviceWithKey = Type.Object({ device: DeviceView, apiKey: ApiKey });

export const DeviceOrMeParams = Type.Object({
  id: Type.Union([Uuid, Type.Literal('me')], { description: 'A device id, or `me` for the calling device.' }),
});
export const OwnedDeviceParams = Type.Object({ id: Uuid });

export const ListDevicesQuery = Type.Object(
  { includeRevoked: Type.Boolean({ default: false }) },
  { additionalProperties: false },
);
export const CreateDeviceBody = Type.Object({ name: DeviceName }, { additionalProperties: false });
export const UpdateDeviceBody = Type.Object(
  { name: Type.Optional(DeviceName), ownerUserId: Type.Optional(UserId) },
  { additionalProperties: false, minProperties: 1 },
);
export const RotateKeyBody = Type.Object(
  {
    overlapSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: MAX_KEY_OVERLAP_SECONDS,
        description: 'How long the replaced key keeps working (default DEVICE_KEY_OVERLAP_SECONDS).',
      }),
    ),
  },
  { additionalProperties: false },
);

export const ClaimDeviceBody = Type.Object(
  { userCode: UserCode, name: Type.Optional(DeviceName) },
  { additionalProperties: false },
);
export const StartClaimBody = Type.Object({ name: DeviceName }, { additionalProperties: false });
export const ClaimStarted = Type.Object({
  deviceCode: Type.String({ description: 'Secret: the device polls with it; never show it.' }),
  userCode: Type.String({ description: 'Show this (XXXX-XXXX); the owner types it in.' }),
  expiresAt: DateTime,
  intervalSeconds: Type.Integer({ description: 'Poll no more often than this.' }),
});
export const PollClaimBody = Type.Object(
  { deviceCode: Type.String({ minLength: 1, maxLength: 100 }) },
  { additionalProperties: false },
);
export const ClaimDone = Type.Object({
  status: Type.Literal('claimed'),
  deviceId: Uuid,
  name: Type.String(),
  ownerUserId: Type.String(),
  apiKey: ApiKey,
});
export const ClaimPending = Type.Object({
  status: Type.Literal('pending'),
  intervalSeconds: Type.Integer(),
  expiresAt: DateTime,
});
