/**
 * One delivery attempt: POST the signed body, with a time limit over connect + answer, no
 * redirects followed, and at most RESPONSE_CAP bytes of the answer read (the rest is dropped).
 * Without WEBHOOK_ALLOW_PRIVATE_TARGETS the connection goes only to public addresses (ssrf.ts).
 */
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { ForbiddenTargetError, guardedLookup, isForbiddenAddress } from './ssrf.ts';

const RESPONSE_CAP = 16 * 1024;

export interface AttemptResult {
  ok: boolean;
  status: number | null;
  latencyMs: number;
  /** Why it failed (no secrets, no body beyond a short excerpt). */
  error: string | null;
}

export async function sendWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  opts: { timeoutMs: number; allowPrivateTargets: boolean },
): Promise<AttemptResult> {
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return { ok: false, status: null, latencyMs: 0, error: 'invalid URL' };
  }
  const host = target.hostname.replace(/^\[|\]$/g, '');
  // An IP literal is connected to without a lookup: check it here.
  if (!opts.allowPrivateTargets && isIP(host) !== 0 && isForbiddenAddress(host)) {
    return { ok: false, status: null, latencyMs: 0, error: new ForbiddenTargetError(host).message };
  }
  const lib = target.protocol === 'https:' ? https : http;
  return new Promise<AttemptResult>((resolve) => {
    let settled = false;
    const finish = (r: Omit<AttemptResult, 'latencyMs'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, latencyMs: latency() });
    };
    const req = lib.request(
      target,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'Mediary-Webhooks/1',
          ...headers,
        },
        ...(opts.allowPrivateTargets ? {} : { lookup: guardedLookup }),
      },
      (res) => {
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > RESPONSE_CAP) res.destroy();
        });
        const status = res.statusCode ?? 0;
        const done = () =>
          finish({
            ok: status >= 200 && status < 300,
            status,
            error: status >= 200 && status < 300 ? null : `answered ${status}`,
          });
        res.on('end', done);
        res.on('close', done);
        res.on('error', done);
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      finish({ ok: false, status: null, error: `no answer within ${opts.timeoutMs} ms` });
    }, opts.timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) => {
      finish({
        ok: false,
        status: null,
        error: err instanceof ForbiddenTargetError ? err.message : `${err.code ?? 'error'}: ${err.message}`,
      });
    });
    req.end(body);
  });
}
