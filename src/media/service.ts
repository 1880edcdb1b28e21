/**
 * The media use cases, wired together: one object the composition root builds and the routes take.
 * Each use case lives in its own module; this façade only delegates (keep it that way):
 *   sessions.ts (create/replay/quotas) · upload.ts (bytes through the API) · multipart.ts (parts) ·
 *   completion.ts · queries.ts (get/view/list/download/usage) · deletion.ts · access.ts (the rules)
 */
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import type { Pool } from '../db/pool.ts';
import { NO_METRICS, type Metrics } from '../metrics/port.ts';
import type { ObjectStore } from '../storage/types.ts';
import { MediaRestores } from './archive.ts';
import { UploadCompletion } from './completion.ts';
import { MediaDeletion } from './deletion.ts';
import { MediaLinkSigner } from './links.ts';
import type { MultipartUploads } from './multipart.ts';
import { MediaQueries } from './queries.ts';
import type { ProcessingQueue } from './session-types.ts';
import { UploadSessions } from './sessions.ts';
import type { CircleUploads, ShareLookup } from './shares.ts';
import { DirectUploads } from './upload.ts';
import type { UploadUrls } from './upload-urls.ts';

export { assertDeviceActive, canAccess, isReplayOf } from './access.ts';
export { markDeletedWithin } from './deletion.ts';
export type {
  CreateSessionInput,
  DeliveryMode,
  DownloadPlan,
  ProcessingQueue,
  PutInstructions,
  SessionResult,
  UploadInstructions,
} from './session-types.ts';

export class MediaService {
  readonly queries: MediaQueries;
  readonly sessions: UploadSessions;
  readonly uploads: DirectUploads;
  readonly completion: UploadCompletion;
  readonly deletion: MediaDeletion;
  /** Originals in archive storage: their status and restore (./archive.ts). */
  readonly restores: MediaRestores;

  constructor(
    pool: Pool,
    store: ObjectStore,
    queue: ProcessingQueue,
    /** The API's own signed upload and part URLs (src/http/urls.ts). */
    urls: UploadUrls,
    config: Pick<Config, 'uploads' | 'databasePreparedStatements' | 'quotas'> & {
      processing?: Pick<Config['processing'], 'malwareScan'>;
    },
    logger: Logger,
    multipart?: MultipartUploads,
    sharing?: ShareLookup & CircleUploads,
    /** What the use cases report (upload sessions, completions, failures). */
    readonly metrics: Metrics = NO_METRICS,
  ) {
    const linkSigner = new MediaLinkSigner(store, config.uploads.downloadUrlTtlSeconds, {
      scanned: (config.processing?.malwareScan.kind ?? 'off') !== 'off',
    });
    this.queries = new MediaQueries(pool, store, config, linkSigner, sharing);
    this.sessions = new UploadSessions(pool, store, urls, config, multipart, sharing);
    this.uploads = new DirectUploads(pool, store, urls, this.queries, multipart);
    this.completion = new UploadCompletion(pool, store, queue, this.queries, logger, {
      multipart,
      metrics,
      prepared: config.databasePreparedStatements,
    });
    this.deletion = new MediaDeletion(pool, store, this.queries, logger);
    this.restores = new MediaRestores(this.queries, store);
  }

  /** Signs the URLs media records carry (and the download/variant routes hand out). */
  get linkSigner(): MediaLinkSigner {
    return this.queries.linkSigner;
  }

  // Delegations, so callers need not know which use case owns a call.
  readonly createSession: UploadSessions['createSession'] = async (...a) => {
    const result = await this.sessions.createSession(...a);
    if (result.created) this.metrics.sessionCreated(this.sessions.backend, result.media.media_type);
    return result;
  };
  readonly verifyUploadSignature: DirectUploads['verifyUploadSignature'] = (...a) =>
    this.uploads.verifyUploadSignature(...a);
  readonly receiveUpload: DirectUploads['receiveUpload'] = (...a) => this.uploads.receiveUpload(...a);
  readonly complete: UploadCompletion['complete'] = (...a) => this.completion.complete(...a);
  readonly get: MediaQueries['get'] = (...a) => this.queries.get(...a);
  readonly loadUnchecked: MediaQueries['loadUnchecked'] = (...a) => this.queries.loadUnchecked(...a);
  readonly findManyUnchecked: MediaQueries['findManyUnchecked'] = (...a) =>
    this.queries.findManyUnchecked(...a);
  readonly view: MediaQueries['view'] = (...a) => this.queries.view(...a);
  readonly links: MediaQueries['links'] = (...a) => this.queries.links(...a);
  readonly list: MediaQueries['list'] = (...a) => this.queries.list(...a);
  readonly usage: MediaQueries['usage'] = (...a) => this.queries.usage(...a);
  readonly download: MediaQueries['download'] = (...a) => this.queries.download(...a);
  readonly delete: MediaDeletion['delete'] = (...a) => this.deletion.delete(...a);
  readonly removeObjects: MediaDeletion['removeObjects'] = (...a) => this.deletion.removeObjects(...a);
}
