/**
 * A loopback HTTP reverse proxy for client tests: counts requests, tracks part uploads in
 * flight, and can misbehave on purpose (drop a connection mid-body, delay, lose a response).
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Seen {
  method: string;
  path: string;
  /** Part number for `PUT /api/v1/media/{id}/parts/{n}` or an S3 `PUT …?partNumber=n&uploadId=…`. */
  part?: number;
  outcome: 'ok' | 'dropped' | 'lost-response';
  status?: number;
}

export interface Fault {
  /** Cut the client connection after forwarding this many body bytes. */
  dropAfterBytes?: number;
  /** Wait before forwarding. */
  delayMs?: number;
  /** Forward, let the server act, then destroy the client socket instead of answering. */
  loseResponse?: boolean;
  /** Forward the request body at about this rate (a slow uplink). */
  bytesPerSecond?: number;
  /** Answer with this status (after reading the body) instead of forwarding: an outage. */
  status?: number;
}

export interface Proxy {
  url: string;
  port: number;
  seen: Seen[];
  peakPartsInFlight: number;
  /** Decide per request whether to misbehave. */
  fault: (req: IncomingMessage, info: { part?: number; attempt: number }) => Fault | undefined;
  setTarget(base: string): void;
  /** Sets the fault rule and restarts the per-request attempt counts. */
  misbehave(fault?: Proxy['fault']): void;
  close(): Promise<void>;
}

const PART = /^\/api\/v1\/media\/[0-9a-f-]+\/parts\/(\d+)/;
const S3_PART = /[?&]partNumber=(\d+)(?:&|$)/;

export interface ProxyOptions {
  /**
   * Forward the client's Host header unchanged (in front of an S3 service: SigV4 signs the Host
   * the client used, so the proxy must not rewrite it). Default: rewrite to the target's host.
   */
  preserveHost?: boolean;
  /** Answers some requests itself (a test page on the API's origin); true when it did. */
  local?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

export async function startProxy(port = 0, opts: ProxyOptions = {}): Promise<Proxy> {
  let target: URL | undefined;
  let inFlight = 0;
  const attempts = new Map<string, number>();
  const sockets = new Set<Socket>();
  const proxy: Proxy = {
    url: '',
    port: 0,
    seen: [],
    peakPartsInFlight: 0,
    fault: () => undefined,
    setTarget: (base) => {
      target = new URL(base);
    },
    misbehave: (fault) => {
      attempts.clear();
      proxy.fault = fault ?? (() => undefined);
    },
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (opts.local?.(req, res)) return;
    const path = req.url ?? '/';
    const m =
      req.method === 'PUT'
        ? (PART.exec(path) ?? (/[?&]uploadId=/.test(path) ? S3_PART.exec(path) : null))
        : null;
    const part = m ? Number(m[1]) : undefined;
    // S3 parts share one path (the object key): tell them apart by part number.
    const key = `${req.method} ${path.split('?')[0]}${part !== undefined ? `#${part}` : ''}`;
    const attempt = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, attempt);
    const fault = proxy.fault(req, { part, attempt }) ?? {};
    const record: Seen = { method: req.method ?? '', path: path.split('?')[0]!, part, outcome: 'ok' };
    proxy.seen.push(record);
    if (part !== undefined) {
      inFlight++;
      proxy.peakPartsInFlight = Math.max(proxy.peakPartsInFlight, inFlight);
    }
    const done = () => {
      if (part !== undefined) inFlight--;
    };
    if (fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
    if (fault.status !== undefined) {
      const status = fault.status;
      record.status = status;
      req.resume();
      req.on('end', () => {
        res.writeHead(status, { 'content-type': 'text/plain' }).end(`proxy: HTTP ${status}`);
        done();
      });
      return;
    }
    if (!target) throw new Error('proxy has no target');
    const upstream = request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path,
        headers: opts.preserveHost ? req.headers : { ...req.headers, host: target.host },
      },
      (up) => {
        if (fault.loseResponse) {
          up.resume();
          up.on('end', () => {
            record.outcome = 'lost-response';
            req.socket.destroy();
            done();
          });
          return;
        }
        record.status = up.statusCode;
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
        up.on('end', done);
      },
    );
    // A client that goes away mid-body: the store sees the request cut too, as it would directly.
    const cut = () => {
      if (!req.complete) upstream.destroy();
    };
    if (req.destroyed) cut();
    else req.on('close', cut);
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    let forwarded = 0;
    req.on('data', (chunk: Buffer) => {
      if (fault.dropAfterBytes !== undefined && forwarded + chunk.length > fault.dropAfterBytes) {
        record.outcome = 'dropped';
        upstream.destroy();
        req.socket.destroy();
        done();
        return;
      }
      forwarded += chunk.length;
      const flowing = upstream.write(chunk);
      if (!flowing || fault.bytesPerSecond !== undefined) {
        // Resume once the upstream took the chunk and (throttled) its time has passed.
        req.pause();
        let waits = (flowing ? 0 : 1) + (fault.bytesPerSecond !== undefined ? 1 : 0);
        const ready = () => {
          if (--waits === 0) req.resume();
        };
        if (!flowing) upstream.once('drain', ready);
        if (fault.bytesPerSecond !== undefined) {
          setTimeout(ready, (chunk.length / fault.bytesPerSecond) * 1000);
        }
      }
    });
    req.on('end', () => upstream.end());
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  proxy.port = (server.address() as AddressInfo).port;
  proxy.url = `http://127.0.0.1:${proxy.port}`;
  return proxy;
}
