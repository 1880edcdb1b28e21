/** Per-device retention: the setting and its dry-run preview (`GET /devices/{id}/retention/preview`). */
import { Type } from '@sinclair/typebox';
import { Uuid } from './common.ts';

const DateTime = Type.String({ format: 'date-time' });

/** The longest retention a device may have (100 years). */
export const MAX_RETENTION_DAYS = 36_500;

export const RetentionDays = Type.Integer({
  minimum: 1,
  maximum: MAX_RETENTION_DAYS,
  description:
    'Keep the device’s captures this many days: older ones (by capture time and arrival) are deleted by the retention job, except media on a post or attached elsewhere.',
});

/**
 * What PATCH /devices/{id} takes: days, or 0 for no retention (not a nullable integer: the validator coerces
 * `0`, `false` and `""` to null, so a nullable integer would read a mistyped 0 as "keep forever").
 */
export const RetentionDaysSetting = Type.Integer({
  minimum: 0,
  maximum: MAX_RETENTION_DAYS,
  description:
    'Keep the device’s captures this many days (0: forever). Older ones (by capture time and arrival) are deleted by the retention job, except media on a post or attached elsewhere.',
});

export const RetentionPreviewQuery = Type.Object(
  {
    retentionDays: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_RETENTION_DAYS,
        description: 'Try this retention instead of the device’s own (nothing is changed).',
      }),
    ),
  },
  { additionalProperties: false },
);

export const RetentionPreviewView = Type.Object({
  deviceId: Uuid,
  retentionDays: Type.Union([Type.Integer(), Type.Null()], {
    description: 'The retention previewed; null when the device has none (nothing would be deleted).',
  }),
  cutoff: Type.Union([DateTime, Type.Null()], { description: 'Captures older than this would go.' }),
  count: Type.Integer({ description: 'Captures the next retention run would delete.' }),
  bytes: Type.Integer({ description: 'Their declared bytes.' }),
  kept: Type.Integer({ description: 'Expired captures kept because they are on a post or attached.' }),
  items: Type.Array(
    Type.Object({
      mediaId: Uuid,
      capturedAt: DateTime,
      receivedAt: DateTime,
      bytes: Type.Integer(),
      status: Type.String(),
    }),
    { description: 'The oldest of them (at most 100).' },
  ),
});
