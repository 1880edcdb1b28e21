/**
 * The upload engine, the same on every platform: hash, create (or resume) the session, send one
 * PUT or the missing multipart parts in parallel with retries (multipart-upload.ts), complete,
 * optionally wait. Platform pieces (transport, hasher, default state store) come in through
 * `Platform`.
 */
import { MediaryClient, type Credential, type WaitOptions } from './api.ts';
import {
  errorFromResponse,
  isAbort,
  isRetryable,
  MediaryError,
  toError,
  UploadAbortedError,
} from './errors.ts';
import { sendMultipart } from './multipart-upload.ts';
import { PauseGate } from './pause.ts';
import { ProgressTracker, type ProgressListener } from './progress.ts';
import { withRetry, type RetryOptions } from './retry.ts';
import {
  hashSource,
  headOf,
  mimeTypeFor,
  sniffMimeType,
  type ByteSource,
  type Sha256Factory,
} from './source.ts';
import { isExpiredUrl, stillFresh, type SendContext, type Sent } from './signed-put.ts';
import { MemoryStateStore, type StateStore, type UploadState } from './state.ts';
import type { Transport } from './transport.ts';
import type { MediaPurpose, MediaStatus, MediaView, SingleUpload } from './types.ts';

export interface UploadOptions {
  /** Server base URL and key (or token, or a provider of one: see `Credential`), or a ready `client`. */
  server?: string;
  key?: Credential;
  token?: Credential;
  client?: MediaryClient;
  /** Who uploads, for keying resume state (see `ClientOptions.principal`). */
  principal?: string;
  /**
   * Defaults: the source's name; its type, unless empty or `application/octet-stream`: then the
   * type its first bytes say, else the type for the name's extension.
   */
  fileName?: string;
  mimeType?: string;
  mediaType?: 'image' | 'video';
  deviceId?: string;
  cameraId?: string;
  /** Devices: the capture's id; (device, camera, messageId) makes session creation idempotent. */
  messageId?: string;
  capturedAt?: string | Date;
  reason?: string;
  /** What the media is for (`post`, `profile`: users only); it decides types, size and variants. */
  purpose?: MediaPurpose;
  /** Users: share the new media with this circle of theirs at once. */
  circleId?: string;
  /** Users: the Idempotency-Key (default: random, kept in the resume state). */
  idempotencyKey?: string;
  /**
   * Derive the default `messageId` (devices) and `Idempotency-Key` (users) from the file's
   * SHA-256, so the same file sent again by the same principal returns its existing media instead
   * of creating another (`mediary upload` does this unless `--new`). Default: false (random ids).
   */
  idempotentByContent?: boolean;
  /** Parts in flight at once (default 4). */
  concurrency?: number;
  retry?: RetryOptions;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** Wait until processing ends (READY/FAILED by default) before resolving. */
  wait?: boolean | Omit<WaitOptions, 'signal'>;
  /** Where resume state lives; `null` keeps it in memory only. Default: platform store. */
  stateStore?: StateStore | null;
  /**
   * Identifies this upload in the state store. Default: derived from the server, the principal
   * (not the credential: a refreshed token resumes the same session) and the file (sha256, size,
   * name) with the device, camera and message ids.
   */
  resumeKey?: string;
}

/** Controls of a running upload. */
export interface UploadControls {
  /**
   * Stops sending (parts in flight are dropped and sent again later) without cancelling the
   * session; the promise stays pending. Hashing waits too. Aborting the signal still cancels.
   */
  pause(): void;
  /** Continues a paused upload with the parts the server does not hold yet. */
  resume(): void;
  readonly paused: boolean;
}

/** What `uploadFile` returns: the upload's promise, with `pause()` and `resume()`. */
export type UploadTask = Promise<UploadResult> & UploadControls;

export function withControls(promise: Promise<UploadResult>, gate: PauseGate): UploadTask {
  return Object.defineProperties(promise, {
    pause: { value: () => gate.pause() },
    resume: { value: () => gate.resume() },
    paused: { get: () => gate.paused },
  }) as UploadTask;
}

export interface UploadResult {
  mediaId: string;
  status: MediaStatus;
  media: MediaView;
  sha256: string;
  bytes: number;
  /** A new session (false: an idempotent replay or a resumed session). */
  created: boolean;
  /** Parts (or the single body) this call sent. */
  partsSent: number;
  /** Parts found already stored and not sent again. */
  partsSkipped: number;
  multipart: boolean;
}

export interface Platform {
  transport: Transport;
  sha256: Sha256Factory;
  defaultStateStore(): StateStore;
}

function randomId(): string {
  const b = new Uint8Array(16);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

async function digestText(create: Sha256Factory, text: string): Promise<string> {
  const h = await create();
  h.update(new TextEncoder().encode(text));
  return h.digest();
}

/** The type to declare: the one given, else the source's (unless generic), its bytes', its name's. */
async function inferMimeType(source: ByteSource, options: UploadOptions, fileName: string) {
  if (options.mimeType) return options.mimeType;
  const declared = source.type?.split(';')[0]?.trim().toLowerCase();
  if (declared && declared !== 'application/octet-stream') return declared;
  return sniffMimeType(await headOf(source)) ?? mimeTypeFor(fileName);
}

export async function runUpload(
  source: ByteSource,
  options: UploadOptions,
  platform: Platform,
  gate: PauseGate = new PauseGate(),
): Promise<UploadResult> {
  const signal = options.signal;
  if (signal?.aborted) throw new UploadAbortedError(undefined, { cause: signal.reason });
  const client =
    options.client ??
    new MediaryClient({
      server: options.server ?? '',
      key: options.token ?? options.key ?? '',
      principal: options.principal,
      retry: options.retry,
    });
  const retry = { ...client.retry, ...options.retry };
  const size = source.size;
  if (size <= 0) throw new TypeError(`${source.name} is empty`);
  const fileName = options.fileName ?? source.name;
  const mimeType = await inferMimeType(source, options, fileName);
  if (!mimeType) throw new TypeError(`cannot tell the type of ${fileName}; pass mimeType`);

  // Hashing reads the whole file before the first byte is sent: report it as it goes.
  // At most every 100 ms, or every 1/64 of the file, whichever comes first; always the ends.
  let lastHashEmit = 0;
  let lastHashBytes = 0;
  const hashing = (bytesHashed: number) => {
    const t = Date.now();
    const ends = bytesHashed === 0 || bytesHashed === size;
    if (!ends && t - lastHashEmit < 100 && bytesHashed - lastHashBytes < size / 64) return;
    lastHashEmit = t;
    lastHashBytes = bytesHashed;
    options.onProgress?.({
      phase: 'hashing',
      bytesHashed,
      bytesSent: 0,
      totalBytes: size,
      resumedBytes: 0,
      bytesPerSecond: 0,
      etaSeconds: null,
      partsDone: 0,
      partCount: 0,
    });
  };
  hashing(0);
  const sha256 = await hashSource(source, platform.sha256, { signal, gate, onBytes: hashing });

  const store =
    options.stateStore === undefined
      ? platform.defaultStateStore()
      : (options.stateStore ?? new MemoryStateStore());
  const who = await client.principal();
  const stateKey =
    options.resumeKey ??
    (await digestText(
      platform.sha256,
      [
        client.server,
        options.principal ?? who.principal,
        sha256,
        size,
        fileName,
        options.deviceId ?? '',
        options.cameraId ?? '',
        options.messageId ?? '',
      ].join('\n'),
    ));
  const now = () => new Date().toISOString();
  let state = await store.get(stateKey);
  if (!state || state.sha256 !== sha256 || state.bytes !== size) {
    state = {
      version: 1,
      idempotencyKey:
        options.idempotencyKey ?? (options.idempotentByContent ? `sha256-${sha256}` : randomId()),
      // Devices always send a message id so that a retried creation is a replay, not a duplicate.
      messageId: who.device
        ? (options.messageId ?? (options.idempotentByContent ? `sha256-${sha256}` : `u-${randomId()}`))
        : undefined,
      sha256,
      bytes: size,
      fileName,
      parts: {},
      createdAt: now(),
      updatedAt: now(),
    };
    await store.put(stateKey, state);
  }
  const st: UploadState = state;
  // Parts finish concurrently; state writes go one after another.
  let saving: Promise<void> = Promise.resolve();
  const save = () => {
    st.updatedAt = now();
    const snapshot = structuredClone(st);
    saving = saving.then(() => store.put(stateKey, snapshot)).catch(() => undefined);
    return saving;
  };

  const capturedAt =
    options.capturedAt instanceof Date ? options.capturedAt.toISOString() : options.capturedAt;
  const createSession = () =>
    client.createSession(
      {
        fileName,
        mimeType,
        bytes: size,
        sha256,
        mediaType: options.mediaType,
        deviceId: options.deviceId,
        cameraId: options.cameraId,
        capturedAt,
        reason: options.reason,
        messageId: st.messageId,
        purpose: options.purpose,
        circleId: options.circleId,
      },
      { signal, idempotencyKey: st.idempotencyKey },
    );

  let mediaId: string | undefined;
  let pending = false;
  try {
    const session = await createSession();
    mediaId = session.mediaId;
    const id = session.mediaId;
    if (st.mediaId !== id) {
      st.mediaId = id;
      await save();
    }
    let media = session.media;
    let partsSent = 0;
    let partsSkipped = 0;
    const multipart = session.upload?.method === 'MULTIPART';
    if (session.status === 'PENDING' && session.upload) {
      pending = true;
      const upload = session.upload;
      const tracker = new ProgressTracker(
        size,
        upload.method === 'MULTIPART' ? upload.partCount : 1,
        options.onProgress,
      );
      let sent: Sent | undefined;
      // Each round sends what the server lacks; a pause ends the round, resume starts the next.
      for (let round = 0; !sent; round++) {
        if (gate.paused) {
          tracker.setPhase('paused');
          await gate.wait(signal);
        }
        const run = new AbortController();
        let pausedRun = false;
        const onAbort = () => run.abort(signal?.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
        const offPause = gate.onPause(() => {
          pausedRun = true;
          run.abort(new UploadAbortedError('paused'));
        });
        const ctx: SendContext = {
          client,
          source,
          platform,
          retry,
          signal: run.signal,
          options,
          createSession,
          tracker,
        };
        try {
          const r =
            upload.method === 'MULTIPART'
              ? await sendMultipart(ctx, id, upload, st, save)
              : await sendSingle(ctx, id, upload);
          partsSent += r.sent;
          if (round === 0) partsSkipped = r.skipped;
          sent = r;
        } catch (err) {
          if (!(pausedRun && !signal?.aborted)) throw err;
          partsSent += (err as { partsSent?: number }).partsSent ?? 0;
        } finally {
          offPause();
          signal?.removeEventListener('abort', onAbort);
        }
      }
      tracker.setPhase('completing');
      media = await withRetry(
        `complete ${id}`,
        () =>
          client.complete(
            id,
            sent.parts,
            { signal }, // the client retries transient errors itself
          ),
        // A completion another process started answers upload_in_progress: wait for it.
        { ...retry, signal, retryIf: (e) => e instanceof MediaryError && e.code === 'upload_in_progress' },
      );
      pending = false;
      tracker.setPhase(options.wait ? 'processing' : 'done');
    }
    await saving;
    await store.delete(stateKey);

    if (options.wait) {
      const waitOpts = typeof options.wait === 'object' ? options.wait : {};
      await client.waitFor(id, { ...waitOpts, signal });
      media = await client.get(id, { signal });
    }
    return {
      mediaId: id,
      status: media.status,
      media,
      sha256,
      bytes: size,
      created: session.created,
      partsSent,
      partsSkipped,
      multipart,
    };
  } catch (err) {
    if (isAbort(err, signal)) {
      // Asked to stop: cancel the session so nothing half-uploaded lingers, and forget the state.
      if (mediaId && pending) {
        await client.cancel(mediaId).catch(() => undefined);
        await saving;
        await store.delete(stateKey).catch(() => undefined);
      }
      throw err instanceof UploadAbortedError ? err : new UploadAbortedError(undefined, { cause: err });
    }
    throw toError(err);
  }
}

async function sendSingle(ctx: SendContext, mediaId: string, first: SingleUpload): Promise<Sent> {
  const size = ctx.source.size;
  const tracker = ctx.tracker;
  tracker.setPhase('uploading');
  let instructions = first;
  let signedAt = Date.now();
  await withRetry(
    `PUT ${mediaId}`,
    async (attempt) => {
      if (attempt > 1 && !stillFresh(instructions.expiresAt, signedAt)) {
        const again = await ctx.createSession();
        if (again.upload?.method === 'PUT') {
          instructions = again.upload;
          signedAt = Date.now();
        } else return; // completed meanwhile
      }
      const res = await ctx.platform.transport({
        url: instructions.url,
        headers: instructions.headers,
        source: ctx.source,
        start: 0,
        end: size,
        signal: ctx.signal,
        onProgress: (n) => tracker.update(1, n),
      });
      // Bytes already in place (an earlier attempt arrived, its answer did not): the upload URL is
      // create-only, so the store answers 412 (S3) or the API 409 object_exists. Complete checks them.
      if (res.status === 412) return;
      if (res.status >= 300) {
        const err = errorFromResponse(res.status, res.text, res.header('retry-after'), `PUT ${mediaId}`);
        if (err.code === 'object_exists') return;
        if (isExpiredUrl(err)) instructions = { ...instructions, expiresAt: new Date(0).toISOString() };
        throw err;
      }
    },
    { ...ctx.retry, signal: ctx.signal, retryIf: (e) => isRetryable(e) || isExpiredUrl(e) },
  );
  tracker.partDone(1, size);
  return { sent: 1, skipped: 0, parts: undefined };
}
