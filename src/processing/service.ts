/** Processing use cases the API offers: requeue a failed media, serve its variants. */
import type { Logger } from 'pino';
import type { Principal } from '../auth/principals.ts';
import type { Config } from '../config.ts';
import { withTransaction, type Pool } from '../db/pool.ts';
import { AppError } from '../errors.ts';
import { archivedError } from '../media/archive.ts';
import { variantContentType } from '../media/layout.ts';
import type { MediaRow } from '../media/repo.ts';
import { variantDisposition } from '../media/links.ts';
import type { DeliveryMode, DownloadPlan, MediaService, ProcessingQueue } from '../media/service.ts';
import type { ObjectStore } from '../storage/types.ts';
import * as repo from './repo.ts';

/**
 * Served exactly like an original (a signed redirect or a proxied stream) or, when the caller named
 * bytes the variant no longer has, `moved` to the current ones (their sha256).
 */
export type VariantPlan = DownloadPlan | { kind: 'moved'; sha256: string | null };

export class ProcessingService {
  constructor(
    private readonly pool: Pool,
    private readonly media: MediaService,
    private readonly store: ObjectStore,
    private readonly queue: ProcessingQueue,
    private readonly config: Pick<Config, 'uploads'>,
    private readonly logger: Logger,
  ) {}

  /** FAILED → UPLOADED + a new job, in one transaction. */
  async retry(principal: Principal, mediaId: string): Promise<MediaRow> {
    const m = await this.media.get(principal, mediaId);
    if (m.status !== 'FAILED') {
      throw new AppError('invalid_state', `Only FAILED media can be retried; this one is ${m.status}.`, {
        status: m.status,
      });
    }
    if (m.detected_mime_type === null) {
      // Never completed (cancelled, expired, or rejected at completion): no bytes were ever
      // verified, and bytes that arrive late must not bypass completion through a retry.
      throw new AppError(
        'invalid_state',
        m.error?.code === 'type_mismatch'
          ? 'This upload was rejected because its content did not match the declared type, and its bytes were deleted; upload the file again.'
          : 'This upload never completed, so there is nothing to process; upload the file again.',
        { status: m.status, error: m.error?.code ?? null },
      );
    }
    // On a store with archive classes, one HEAD says both whether it is there and whether a job
    // could read it: an archived original is refused here (409 archived) instead of failing again.
    const archive = this.store.archive ? await this.store.archive.status(m.storage_key) : undefined;
    if (!(archive ?? (await this.store.stat(m.storage_key)))) {
      throw new AppError('invalid_state', 'The original file is no longer stored; upload the file again.', {
        status: m.status,
      });
    }
    if (archive?.state === 'archived' || archive?.state === 'restoring') throw archivedError(m.id, archive);
    const requeued = await withTransaction(this.pool, async (tx) => {
      if (!(await repo.resetForRetry(tx, m.id))) return false;
      await this.queue.enqueueProcessing(tx, m.id, m.media_type);
      return true;
    });
    if (!requeued) {
      throw new AppError('invalid_state', 'The media changed state; fetch it again.', { mediaId });
    }
    this.logger.info({ mediaId }, 'processing requeued');
    return this.media.loadUnchecked(m.id); // `m` was loaded through get() above
  }

  /**
   * How to serve one variant: a signed redirect, or a proxied stream. `version` is the sha256 the
   * caller's URL names: in proxy mode, a version the variant no longer has (it was reprocessed)
   * answers `moved` with the current one. A redirect always goes to the current bytes (the redirect
   * is never cached, so a stale version is harmless there). Access is checked first, whatever the
   * version.
   */
  async variant(
    principal: Principal,
    mediaId: string,
    name: string,
    opts: { mode: DeliveryMode; version?: string | undefined },
  ): Promise<VariantPlan> {
    const m = await this.media.view(principal, mediaId);
    const v = m.variants.find((x) => x.name === name);
    if (!v) {
      throw new AppError('not_found', `No variant "${name}" for this media.`, {
        available: m.variants.map((x) => x.name),
      });
    }
    if (opts.mode === 'redirect') return { kind: 'redirect', ...(await this.media.linkSigner.variant(m, v)) };
    if (opts.mode === 'url') return { kind: 'url', ...(await this.media.linkSigner.variant(m, v)) };
    const contentType = variantContentType(v.format);
    const disposition = variantDisposition(m.id, v.name, v.format);
    if (opts.version !== undefined && opts.version !== v.sha256) return { kind: 'moved', sha256: v.sha256 };
    const stat = await this.store.stat(v.key);
    if (!stat) throw new AppError('not_found', 'The variant object is missing.');
    return {
      kind: 'stream',
      contentType,
      contentDisposition: disposition,
      etag: v.sha256 !== null ? `"${v.sha256}"` : stat.etag,
      size: stat.size,
      lastModified: stat.lastModified,
      open: (range) => this.store.get(v.key, range),
    };
  }

  links(m: MediaRow, viewer: Principal) {
    return this.media.links(m, viewer);
  }
}
