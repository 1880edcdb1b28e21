/**
 * The multipart part loop: the server's part plan against the resume state, the parts the store
 * lacks sent in parallel with retries, part URLs signed in batches on demand and re-signed near
 * expiry; a pause or abort ends the round with what it sent so far.
 */
import { errorFromResponse, isRetryable, MediaryError, toError, UploadAbortedError } from './errors.ts';
import { withRetry } from './retry.ts';
import { isExpiredUrl, stillFresh, type SendContext, type Sent } from './signed-put.ts';
import type { UploadState } from './state.ts';
import type { MultipartUpload, PartListing, PartUrl } from './types.ts';

const PART_URL_BATCH = 32;

export async function sendMultipart(
  ctx: SendContext,
  mediaId: string,
  plan: MultipartUpload,
  st: UploadState,
  save: () => Promise<void>,
): Promise<Sent> {
  const { client, source, signal } = ctx;
  const size = source.size;
  const { partSize, partCount } = plan;
  const partLen = (n: number) => (n < partCount ? partSize : size - (partCount - 1) * partSize);
  if (st.partSize !== partSize || st.partCount !== partCount) {
    st.partSize = partSize;
    st.partCount = partCount;
    st.parts = {};
    await save();
  }

  // The server's listing is the truth about what is stored; the local state only remembers etags.
  let listing: PartListing;
  try {
    listing = await client.listParts(mediaId, { signal });
  } catch (err) {
    // The store already joined every part (an earlier completion whose answer was lost): nothing
    // to send; completing again lets the server verify the object.
    if (err instanceof MediaryError && err.status === 409 && err.details?.state === 'COMPLETED') {
      for (let n = 1; n <= partCount; n++) ctx.tracker.resumedPart(n, partLen(n));
      return { sent: 0, skipped: partCount, parts: undefined };
    }
    throw err;
  }
  const done = new Map<number, string>();
  for (const p of listing.parts) if (p.size === partLen(p.partNumber)) done.set(p.partNumber, p.etag);
  st.parts = Object.fromEntries([...done].map(([n, e]) => [String(n), e]));
  await save();

  const tracker = ctx.tracker;
  for (const n of done.keys()) tracker.resumedPart(n, partLen(n));
  tracker.setPhase('uploading');
  const queue: number[] = [];
  for (let n = 1; n <= partCount; n++) if (!done.has(n)) queue.push(n);
  const skipped = done.size;

  // Part URLs are signed on demand in batches, and re-signed when near expiry.
  const urls = new Map<number, PartUrl & { signedAt: number }>();
  const inFlightSign = new Map<number, Promise<void>>();
  const urlFor = async (n: number, forceFresh: boolean): Promise<PartUrl> => {
    const have = urls.get(n);
    if (have && !forceFresh && stillFresh(have.expiresAt, have.signedAt)) return have;
    const running = inFlightSign.get(n);
    if (running && !forceFresh) {
      await running;
      return urlFor(n, false);
    }
    const batch = [n, ...queue.filter((q) => q !== n && !urls.has(q))].slice(0, PART_URL_BATCH);
    const asked = Date.now();
    const p = client.signParts(mediaId, batch, { signal: inner.signal }).then((r) => {
      for (const u of r.parts) urls.set(u.partNumber, { ...u, signedAt: asked });
    });
    for (const b of batch) inFlightSign.set(b, p);
    try {
      await p;
    } finally {
      for (const b of batch) if (inFlightSign.get(b) === p) inFlightSign.delete(b);
    }
    const got = urls.get(n);
    if (!got) throw new MediaryError(0, 'part_url_missing', `the server did not sign part ${n}`);
    return got;
  };

  // One failing part stops the others (the upload stays resumable); the caller's abort cancels.
  const inner = new AbortController();
  const onOuterAbort = () => inner.abort(signal?.reason);
  signal?.addEventListener('abort', onOuterAbort, { once: true });
  let firstError: unknown;
  let sent = 0;

  const sendPart = async (n: number) => {
    const start = (n - 1) * partSize;
    const end = start + partLen(n);
    let stale = false;
    const etag = await withRetry(
      `PUT part ${n} of ${mediaId}`,
      async () => {
        const u = await urlFor(n, stale);
        stale = false;
        const res = await ctx.platform.transport({
          url: u.url,
          headers: u.headers,
          source,
          start,
          end,
          signal: inner.signal,
          onProgress: (b) => tracker.update(n, b),
        });
        if (res.status >= 300) {
          const err = errorFromResponse(res.status, res.text, res.header('retry-after'), `PUT part ${n}`);
          if (isExpiredUrl(err)) stale = true;
          throw err;
        }
        const tag = res.header('etag');
        if (!tag) {
          throw new MediaryError(
            0,
            'etag_missing',
            `part ${n} was stored but its ETag is not readable (from another origin it must be exposed via CORS: S3_CORS_ORIGINS for a bucket, CORS_ORIGINS for the API)`,
          );
        }
        return tag;
      },
      { ...ctx.retry, signal: inner.signal, retryIf: (e) => isRetryable(e) || isExpiredUrl(e) },
    );
    done.set(n, etag);
    st.parts[String(n)] = etag;
    sent++;
    tracker.partDone(n, end - start);
    void save();
  };

  const worker = async () => {
    while (queue.length > 0 && !inner.signal.aborted) {
      const n = queue.shift()!;
      try {
        await sendPart(n);
      } catch (err) {
        firstError ??= err;
        inner.abort(err);
      }
    }
  };
  const concurrency = Math.max(1, Math.min(ctx.options.concurrency ?? 4, 32));
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(1, queue.length)) }, worker));
  } finally {
    signal?.removeEventListener('abort', onOuterAbort);
  }
  if (signal?.aborted) {
    // Paused (or aborted): the caller may start another round; it counts what this one sent.
    throw Object.assign(new UploadAbortedError(undefined, { cause: signal.reason }), { partsSent: sent });
  }
  if (firstError !== undefined) throw toError(firstError);
  await save();
  const parts = [...done].sort((a, b) => a[0] - b[0]).map(([partNumber, etag]) => ({ partNumber, etag }));
  return { sent, skipped, parts };
}
