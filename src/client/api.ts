/** A typed client for the Mediary HTTP API: JSON calls with retries, over the platform's fetch. */
import { errorFromResponse, MediaryError, UploadAbortedError } from './errors.ts';
import { sleep, withRetry, type RetryOptions } from './retry.ts';
import type {
  CreateSessionInput,
  ListQuery,
  MediaPage,
  MediaStatus,
  MediaView,
  PartListing,
  PartUrl,
  SessionResponse,
  StatusView,
} from './types.ts';

/**
 * A device API key (`mdk_…`) or a user JWT, or a function that returns the current one. A function
 * is asked before every request (so a long upload picks up a refreshed token), and once more
 * after a 401; cache in it what is still valid.
 */
export type Credential = string | (() => string | Promise<string>);

export interface ClientOptions {
  /** Base URL of the server, e.g. `https://media.example.com` (the `/api/v1` prefix is added). */
  server: string;
  /** A device API key or a user JWT, or a provider of one (`token` is the same option). */
  key?: Credential;
  token?: Credential;
  /**
   * Who uploads, for keying resume state (default: a user token's `iss`+`sub`, decoded without
   * verification; a device key itself). Set it when tokens carry no stable `sub`.
   */
  principal?: string;
  retry?: RetryOptions;
  /** Replace the global fetch (tests, custom agents). */
  fetch?: typeof fetch;
}

export interface RequestOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export interface WaitOptions {
  /** Statuses that end the wait (default READY and FAILED). */
  until?: readonly MediaStatus[];
  /** Give up after this long (default: wait forever). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** First poll delay (default 500 ms), grows ×1.5 up to `maxIntervalMs` (default 5 s). */
  intervalMs?: number;
  maxIntervalMs?: number;
  /**
   * Listen to the media's event stream (`GET /media/{id}/events`, SSE) and read the status only
   * when it announces a change (default true). Falls back to polling when the stream cannot be
   * opened (an older server, a proxy that buffers) or breaks.
   */
  events?: boolean;
}

/** While the event stream is open, the status is still read this often (a safety net). */
const STREAM_BACKSTOP_MS = 30_000;
/**
 * How long a wait lets the event stream open before its first read. A proxy that buffers answers
 * never hands the stream over: the wait polls meanwhile, and uses the stream if it opens later.
 */
const STREAM_OPEN_WAIT_MS = 2_000;

/**
 * A stable name for whoever a key or token authenticates: a JWT's `iss` and `sub` (read, not
 * verified: the server verifies; this only keys local state), else the key itself.
 */
export function principalOf(key: string): string {
  if (key.startsWith('mdk_')) return `device-key:${key}`;
  const parts = key.split('.');
  if (parts.length === 3) {
    try {
      const b64 = parts[1]!.replace(/-/g, '+').replace(/_/g, '/');
      const json = new TextDecoder().decode(
        Uint8Array.from(atob(b64.padEnd(Math.ceil(b64.length / 4) * 4, '=')), (c) => c.charCodeAt(0)),
      );
      const claims = JSON.parse(json) as { sub?: unknown; iss?: unknown };
      if (typeof claims.sub === 'string' && claims.sub) {
        return `user:${typeof claims.iss === 'string' ? claims.iss : ''}:${claims.sub}`;
      }
    } catch {
      // Not a JWT after all: the token itself is the best name there is.
    }
  }
  return `token:${key}`;
}

export class MediaryClient {
  readonly server: string;
  readonly retry: RetryOptions;
  private readonly credential: Credential;
  private readonly principalOption: string | undefined;
  private lastKey: string | undefined;
  private readonly fetchImpl: typeof fetch;

  constructor(opts: ClientOptions) {
    if (!opts.server) throw new TypeError('MediaryClient needs a server URL');
    const credential = opts.token ?? opts.key;
    if (!credential) throw new TypeError('MediaryClient needs a key or token');
    this.server = opts.server.replace(/\/+$/, '').replace(/\/api\/v1$/, '');
    this.credential = credential;
    if (typeof credential === 'string') this.lastKey = credential;
    this.principalOption = opts.principal;
    this.retry = opts.retry ?? {};
    this.fetchImpl = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** The key or token the last request used (for a provider: '' before the first request). */
  get key(): string {
    return this.lastKey ?? '';
  }

  /** The current key or token: the string given, or what the provider answers now. */
  async currentKey(): Promise<string> {
    const key = typeof this.credential === 'function' ? await this.credential() : this.credential;
    if (typeof key !== 'string' || !key) throw new TypeError('the token provider returned no token');
    this.lastKey = key;
    return key;
  }

  /** Device keys start with `mdk_`; anything else is taken to be a user token. */
  get isDevice(): boolean {
    return this.key.startsWith('mdk_');
  }

  /** Who this client uploads as (see `ClientOptions.principal`); asks a provider for a token. */
  async principal(): Promise<{ principal: string; device: boolean }> {
    const key = await this.currentKey();
    return { principal: this.principalOption ?? principalOf(key), device: key.startsWith('mdk_') };
  }

  url(pathname: string): string {
    return `${this.server}/api/v1${pathname}`;
  }

  /**
   * One authenticated request, no retries (but with a token provider, a 401 asks it once more and
   * repeats the request: the token may have expired since it was handed out); non-2xx answers
   * throw MediaryError.
   */
  async raw(method: string, pathname: string, body?: unknown, opts: RequestOptions = {}): Promise<Response> {
    let res = await this.send(method, pathname, body, opts);
    if (res.status === 401 && typeof this.credential === 'function') {
      await res.body?.cancel().catch(() => undefined);
      res = await this.send(method, pathname, body, opts);
    }
    if (res.status >= 400) {
      const text = await res.text().catch(() => '');
      throw errorFromResponse(res.status, text, res.headers.get('retry-after'), `${method} ${pathname}`);
    }
    return res;
  }

  private async send(method: string, pathname: string, body: unknown, opts: RequestOptions) {
    const key = await this.currentKey();
    const headers: Record<string, string> = { authorization: `Bearer ${key}`, ...opts.headers };
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await this.fetchImpl(this.url(pathname), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: opts.signal,
        redirect: 'manual',
      });
    } catch (err) {
      if (opts.signal?.aborted) throw new UploadAbortedError(undefined, { cause: err });
      throw err;
    }
  }

  /** A JSON request retried on network errors, 429 and 5xx. */
  async json<T>(method: string, pathname: string, body?: unknown, opts: RequestOptions = {}): Promise<T> {
    const { res, data } = await this.jsonWithStatus<T>(method, pathname, body, opts);
    void res;
    return data;
  }

  async jsonWithStatus<T>(
    method: string,
    pathname: string,
    body?: unknown,
    opts: RequestOptions = {},
  ): Promise<{ res: Response; data: T }> {
    return withRetry(
      `${method} ${pathname}`,
      async () => {
        const res = await this.raw(method, pathname, body, opts);
        const text = await res.text();
        return { res, data: (text ? JSON.parse(text) : null) as T };
      },
      { ...this.retry, signal: opts.signal },
    );
  }

  /**
   * Creates an upload session. Retried safely: the same `idempotencyKey` (users) or `messageId`
   * (devices) makes a repeat answer 200 with the same record instead of creating another.
   */
  async createSession(
    input: CreateSessionInput,
    opts: RequestOptions & { idempotencyKey?: string } = {},
  ): Promise<SessionResponse & { created: boolean }> {
    const headers = { ...opts.headers };
    if (opts.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
    const { res, data } = await this.jsonWithStatus<SessionResponse>('POST', '/media', input, {
      ...opts,
      headers,
    });
    return { ...data, created: res.status === 201 };
  }

  get(mediaId: string, opts?: RequestOptions): Promise<MediaView> {
    return this.json('GET', `/media/${mediaId}`, undefined, opts);
  }

  status(mediaId: string, opts?: RequestOptions): Promise<StatusView> {
    return this.json('GET', `/media/${mediaId}/status`, undefined, opts);
  }

  complete(
    mediaId: string,
    parts?: { partNumber: number; etag: string }[],
    opts?: RequestOptions,
  ): Promise<MediaView> {
    return this.json('POST', `/media/${mediaId}/complete`, parts ? { parts } : {}, opts);
  }

  signParts(mediaId: string, partNumbers: number[], opts?: RequestOptions): Promise<{ parts: PartUrl[] }> {
    return this.json('POST', `/media/${mediaId}/parts`, { partNumbers }, opts);
  }

  listParts(mediaId: string, opts?: RequestOptions): Promise<PartListing> {
    return this.json('GET', `/media/${mediaId}/parts`, undefined, opts);
  }

  cancel(mediaId: string, opts?: RequestOptions): Promise<MediaView> {
    return this.json('POST', `/media/${mediaId}/cancel`, {}, opts);
  }

  delete(mediaId: string, opts?: RequestOptions): Promise<unknown> {
    return this.json('DELETE', `/media/${mediaId}`, undefined, opts);
  }

  listDeviceMedia(deviceId: string, query: ListQuery = {}, opts?: RequestOptions): Promise<MediaPage> {
    return this.json('GET', `/devices/${encodeURIComponent(deviceId)}/media${qs(query)}`, undefined, opts);
  }

  listUserMedia(userId = 'me', query: ListQuery = {}, opts?: RequestOptions): Promise<MediaPage> {
    return this.json('GET', `/users/${encodeURIComponent(userId)}/media${qs(query)}`, undefined, opts);
  }

  /** The original bytes, proxied through the API (`?mode=proxy`); the caller reads `body`. */
  download(mediaId: string, opts: RequestOptions & { range?: string } = {}): Promise<Response> {
    const headers = { ...opts.headers };
    if (opts.range) headers.range = opts.range;
    return withRetry(
      `GET /media/${mediaId}/download`,
      () => this.raw('GET', `/media/${mediaId}/download?mode=proxy`, undefined, { ...opts, headers }),
      { ...this.retry, signal: opts.signal },
    );
  }

  /** Polls `/status` with growing intervals until the media reaches one of `until`. */
  async waitFor(mediaId: string, opts: WaitOptions = {}): Promise<StatusView> {
    const until = opts.until ?? ['READY', 'FAILED'];
    const deadline = opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : Infinity;
    let interval = opts.intervalMs ?? 500;
    // Subscribed before the first read, so a change between the read and the wait is not missed.
    const watch = opts.events === false ? undefined : await this.watchMedia(mediaId, opts.signal);
    try {
      for (;;) {
        const s = await this.status(mediaId, { signal: opts.signal });
        if (until.includes(s.status)) return s;
        if (s.status === 'FAILED' || s.status === 'DELETED') {
          throw new MediaryError(409, 'invalid_state', `media ${mediaId} is ${s.status}`, { status: s });
        }
        const left = deadline - Date.now();
        if (left <= 0) {
          throw new MediaryError(0, 'wait_timeout', `media ${mediaId} is still ${s.status}`, { status: s });
        }
        if (watch?.live) {
          await watch.next(Math.min(STREAM_BACKSTOP_MS, left), opts.signal);
        } else {
          await sleep(Math.min(interval, left), opts.signal);
          interval = Math.min(interval * 1.5, opts.maxIntervalMs ?? 5000);
        }
      }
    } finally {
      watch?.close();
    }
  }

  /**
   * Opens the media's event stream; `next()` resolves at the next event (or after `ms`). `live`
   * turns false when the stream could not be opened or ended (then the caller polls).
   */
  private async watchMedia(mediaId: string, signal: AbortSignal | undefined): Promise<MediaWatch> {
    const halt = new AbortController();
    const onAbort = () => halt.abort();
    signal?.addEventListener('abort', onAbort);
    let pending = false;
    let wake: (() => void) | undefined;
    const watch: MediaWatch = {
      live: false,
      next: (ms, sig) => {
        if (pending || !watch.live) {
          pending = false;
          return Promise.resolve();
        }
        return new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            sig?.removeEventListener('abort', done);
            wake = undefined;
            pending = false;
            resolve();
          };
          const timer = setTimeout(done, ms);
          sig?.addEventListener('abort', done);
          wake = done;
        });
      },
      close: () => {
        signal?.removeEventListener('abort', onAbort);
        halt.abort();
      },
    };
    const changed = () => {
      pending = true;
      wake?.();
    };
    let waited = false;
    let settled!: () => void;
    const opened = new Promise<void>((r) => (settled = r));
    void (async () => {
      const key = await this.currentKey();
      const res = await this.fetchImpl(this.url(`/media/${mediaId}/events`), {
        headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream' },
        signal: halt.signal,
      });
      if (
        res.status !== 200 ||
        !res.body ||
        !/^text\/event-stream/.test(res.headers.get('content-type') ?? '')
      ) {
        await res.body?.cancel().catch(() => undefined);
        return;
      }
      watch.live = true;
      settled();
      // Opened after the wait's first read: read once more, a change in between was not seen.
      if (waited) changed();
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buf = '';
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          const end = buf.lastIndexOf('\n\n');
          if (end < 0) continue;
          // Any message with an id is a change (the first, id-less one is the current status).
          if (/^id:/m.test(buf.slice(0, end))) changed();
          buf = buf.slice(end + 2);
        }
      } finally {
        watch.live = false;
        changed();
      }
    })()
      .catch(() => undefined) // no stream, aborted or broken: poll from here on
      .finally(settled);
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([opened, new Promise<void>((r) => (timer = setTimeout(r, STREAM_OPEN_WAIT_MS)))]);
    clearTimeout(timer);
    waited = true;
    return watch;
  }
}

interface MediaWatch {
  live: boolean;
  next(ms: number, signal?: AbortSignal): Promise<void>;
  close(): void;
}

function qs(query: ListQuery): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}
