/**
 * Tiered storage on S3-compatible stores: the lifecycle rule `mediary storage setup` applies
 * (originals, recognised by an object tag, move to a colder class after N days), and the archive
 * operations the store offers (status from HeadObject + a one-byte GET, RestoreObject).
 */
import {
  GetBucketLifecycleConfigurationCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutBucketLifecycleConfigurationCommand,
  DeleteBucketLifecycleCommand,
  PutObjectTaggingCommand,
  RestoreObjectCommand,
  type LifecycleRule,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { ArchiveOps, ArchiveStatus } from './archive.ts';
import { awsError, isNotFound } from './s3-support.ts';

/** The ID of Mediary's own rule: setup replaces this rule only and keeps every other. */
export const ARCHIVE_RULE_ID = 'mediary-archive-originals';
/** The tag that marks an original (set at completion); the rule's filter. */
export const ORIGINAL_TAG = { Key: 'mediary-object', Value: 'original' } as const;

export interface ArchiveOptions {
  /** Undefined: no rule (setup removes an earlier Mediary rule), originals are not tagged. */
  archive: { afterDays: number; storageClass: string } | undefined;
  restore: { days: number; tier: 'Standard' | 'Bulk' | 'Expedited' };
}

type Timed = <T>(call: (abortSignal: AbortSignal) => Promise<T>) => Promise<T>;

const DAY_MS = 86_400_000;

/** The rules already on the bucket (none: an empty list). */
async function currentRules(client: S3Client, bucket: string, timed: Timed): Promise<LifecycleRule[]> {
  try {
    const res = await timed((abortSignal) =>
      client.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }), { abortSignal }),
    );
    return res.Rules ?? [];
  } catch (err) {
    if (awsError(err).name === 'NoSuchLifecycleConfiguration' || isNotFound(err)) return [];
    throw err;
  }
}

/**
 * Applies (or removes) Mediary's archive rule, keeping every rule of the operator's: reads the
 * bucket's lifecycle configuration, replaces the rule with {@link ARCHIVE_RULE_ID} only, writes it
 * back and reads it again to check. Returns what it did, line by line.
 */
export async function applyArchiveRule(
  client: S3Client,
  bucket: string,
  archive: ArchiveOptions['archive'],
  timed: Timed,
): Promise<string[]> {
  const before = await currentRules(client, bucket, timed);
  const others = before.filter((r) => r.ID !== ARCHIVE_RULE_ID);
  const hadOurs = others.length !== before.length;
  const kept =
    others.length > 0
      ? `; kept ${others.length} other rule(s): ${others.map((r) => r.ID ?? '(no id)').join(', ')}`
      : '';
  if (!archive) {
    if (!hadOurs) return [];
    await timed((abortSignal) =>
      others.length > 0
        ? client.send(
            new PutBucketLifecycleConfigurationCommand({
              Bucket: bucket,
              LifecycleConfiguration: { Rules: others },
            }),
            { abortSignal },
          )
        : client.send(new DeleteBucketLifecycleCommand({ Bucket: bucket }), { abortSignal }),
    );
    return [`lifecycle: archive rule ${ARCHIVE_RULE_ID} removed (S3_ARCHIVE_AFTER_DAYS is not set)${kept}`];
  }
  const ours: LifecycleRule = {
    ID: ARCHIVE_RULE_ID,
    Status: 'Enabled',
    Filter: { Tag: { ...ORIGINAL_TAG } },
    Transitions: [{ Days: archive.afterDays, StorageClass: archive.storageClass as never }],
  };
  await timed((abortSignal) =>
    client.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: bucket,
        LifecycleConfiguration: { Rules: [...others, ours] },
      }),
      { abortSignal },
    ),
  );
  const after = await currentRules(client, bucket, timed);
  const applied = after.find((r) => r.ID === ARCHIVE_RULE_ID);
  const t = applied?.Transitions?.[0];
  if (!applied || t?.Days !== archive.afterDays || t.StorageClass !== archive.storageClass) {
    throw new Error(
      `the store accepted the lifecycle rule ${ARCHIVE_RULE_ID} but does not report it back as written`,
    );
  }
  return [
    `lifecycle: originals (tag ${ORIGINAL_TAG.Key}=${ORIGINAL_TAG.Value}) move to ${archive.storageClass} ` +
      `${archive.afterDays} days after upload (rule ${ARCHIVE_RULE_ID}, ${hadOurs ? 'replaced' : 'added'})${kept}`,
  ];
}

/** `ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"` → its parts. */
export function parseRestoreHeader(
  header: string | undefined,
): { ongoing: boolean; expiry: Date | null } | undefined {
  if (!header) return undefined;
  const ongoing = /ongoing-request\s*=\s*"?(true|false)"?/i.exec(header)?.[1];
  if (ongoing === undefined) return undefined;
  const expiry = /expiry-date\s*=\s*"([^"]+)"/i.exec(header)?.[1];
  const date = expiry !== undefined ? new Date(expiry) : null;
  return {
    ongoing: ongoing.toLowerCase() === 'true',
    expiry: date && !Number.isNaN(date.getTime()) ? date : null,
  };
}

/** The archive operations of an S3 bucket. */
export function s3ArchiveOps(
  client: S3Client,
  bucket: string,
  opts: ArchiveOptions,
  timed: Timed,
): ArchiveOps {
  const status = async (key: string): Promise<ArchiveStatus | undefined> => {
    let head;
    try {
      head = await timed((abortSignal) =>
        client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { abortSignal }),
      );
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const storageClass = head.StorageClass ?? 'STANDARD';
    const restore = parseRestoreHeader(head.Restore);
    if (restore?.ongoing) return { state: 'restoring', storageClass, restoredUntil: null };
    if (restore) return { state: 'restored', storageClass, restoredUntil: restore.expiry };
    if (storageClass === 'STANDARD' && head.ArchiveStatus === undefined)
      return { state: 'readable', storageClass, restoredUntil: null };
    // A class of another name may or may not need a restore (GLACIER_IR, STANDARD_IA, Ceph's own
    // classes, R2's do not): the store itself says, on a one-byte read.
    if ((head.ContentLength ?? 0) === 0) return { state: 'readable', storageClass, restoredUntil: null };
    try {
      const probe = await timed((abortSignal) =>
        client.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: 'bytes=0-0' }), { abortSignal }),
      );
      (probe.Body as { destroy?: () => void } | undefined)?.destroy?.();
      return { state: 'readable', storageClass, restoredUntil: null };
    } catch (err) {
      if (awsError(err).name === 'InvalidObjectState')
        return { state: 'archived', storageClass, restoredUntil: null };
      if (isNotFound(err)) return undefined;
      throw err;
    }
  };

  return {
    async markOriginal(key) {
      if (!opts.archive) return;
      await timed((abortSignal) =>
        client.send(
          new PutObjectTaggingCommand({
            Bucket: bucket,
            Key: key,
            Tagging: { TagSet: [{ ...ORIGINAL_TAG }] },
          }),
          { abortSignal },
        ),
      );
    },
    mayBeArchived(writtenAt, now = new Date()) {
      return (
        opts.archive !== undefined && now.getTime() - writtenAt.getTime() >= opts.archive.afterDays * DAY_MS
      );
    },
    status,
    async restore(key) {
      const before = await status(key);
      if (before?.state !== 'archived') return before;
      try {
        await timed((abortSignal) =>
          client.send(
            new RestoreObjectCommand({
              Bucket: bucket,
              Key: key,
              RestoreRequest: {
                // Intelligent-Tiering's archive tiers take no Days: the copy moves back to its frequent tier.
                ...(before.storageClass === 'INTELLIGENT_TIERING' ? {} : { Days: opts.restore.days }),
                GlacierJobParameters: { Tier: opts.restore.tier },
              },
            }),
            { abortSignal },
          ),
        );
      } catch (err) {
        if (awsError(err).name !== 'RestoreAlreadyInProgress') throw err;
      }
      return (await status(key)) ?? { ...before, state: 'restoring' };
    },
  };
}
