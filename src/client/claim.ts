/**
 * A device claims itself (RFC 8628's device flow): it asks the server for a short code, shows it
 * (`onCode`), and polls until its owner has typed the code into their app; the answer carries the
 * device's key, once. No credentials are needed, and no key is ever typed.
 */
import { errorFromResponse, isRetryable } from './errors.ts';
import { sleep } from './retry.ts';
import type { ClaimedDevice, ClaimPending, ClaimStarted } from './types.ts';

export type { ClaimedDevice } from './types.ts';

export interface ClaimOptions {
  /** The Mediary server, e.g. `https://media.example.com` (the API is under `/api/v1`). */
  server: string;
  /** The name the device suggests for itself (its owner may change it). */
  name: string;
  /** Show this code to the person who will claim the device (e.g. print it, or put it on a display). */
  onCode: (code: { userCode: string; expiresAt: Date }) => void;
  signal?: AbortSignal;
  fetch?: typeof fetch;
}

export async function claimDevice(opts: ClaimOptions): Promise<ClaimedDevice> {
  const doFetch = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const url = (p: string) => new URL(`/api/v1${p}`, opts.server).toString();
  const post = async <T>(path: string, body: unknown) => {
    const res = await doFetch(url(path), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const text = await res.text();
    if (res.status >= 400) throw errorFromResponse(res.status, text, res.headers.get('retry-after'), path);
    return { status: res.status, body: JSON.parse(text) as T };
  };

  const started = (await post<ClaimStarted>('/device-claims', { name: opts.name })).body;
  const expiresAt = new Date(started.expiresAt);
  let intervalMs = started.intervalSeconds * 1000;
  opts.onCode({ userCode: started.userCode, expiresAt });
  for (;;) {
    await sleep(intervalMs, opts.signal);
    let answer: { status: number; body: ClaimedDevice | ClaimPending };
    try {
      answer = await post('/device-claims/token', { deviceCode: started.deviceCode });
    } catch (err) {
      // A network blip or a busy server: keep polling until the code expires (a 410 ends it).
      if (isRetryable(err) && Date.now() < expiresAt.getTime()) continue;
      throw err;
    }
    const b = answer.body;
    if (b.status === 'claimed') return b;
    intervalMs = b.intervalSeconds * 1000;
  }
}
