/**
 * AWS S3's archive-class read rules, in front of a real Ceph gateway. Ceph 16 (the tests' S3)
 * has storage classes but no archive semantics: its objects stay readable in every class and it
 * answers RestoreObject with 501. This loopback proxy forwards every request to Ceph unchanged
 * (Host preserved, so SigV4 signatures, presigned ones included, still verify there) except for
 * the keys a test declares archived, for which it answers as AWS documents for GLACIER:
 *
 *   GET (also ranged, also presigned)  → 403 InvalidObjectState, until a restore has finished
 *   HEAD                               → Ceph's answer + x-amz-storage-class, x-amz-restore
 *   POST ?restore                      → 202 (started) | 409 RestoreAlreadyInProgress | 200 (restored)
 *
 * What this proves and what not: Mediary's handling of those answers on the wire (the SDK's
 * error names, headers, our status codes); not that a particular AWS region behaves so.
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

interface Archived {
  storageClass: string;
  restore: 'none' | 'ongoing' | 'done';
  expiry: Date;
}

export interface GlacierProxy {
  /** Use as S3_ENDPOINT. */
  url: string;
  /** `key` is now in `storageClass` (default GLACIER): reads fail until restored. */
  archive(key: string, storageClass?: string): void;
  /** The next GET of `key` without a Range (a worker reading the whole original) archives it first. */
  archiveOnNextRead(key: string): void;
  /** The restore of `key` finished: readable until `expiry`. */
  finishRestore(key: string, expiry: Date): void;
  /** Keys a RestoreObject request reached (in order). */
  restoreRequests: string[];
  close(): Promise<void>;
}

const SUBRESOURCES = ['tagging', 'restore', 'uploadId', 'uploads', 'partNumber', 'acl', 'lifecycle', 'cors'];

const xmlError = (res: ServerResponse, status: number, code: string, message: string) => {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message>` +
    `<RequestId>glacier-proxy</RequestId><HostId>glacier-proxy</HostId></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
};

const drain = (req: IncomingMessage) =>
  new Promise<void>((resolve) => {
    req.resume();
    req.on('end', resolve);
  });

export async function startGlacierProxy(target: string, bucket: string): Promise<GlacierProxy> {
  const to = new URL(target);
  const archived = new Map<string, Archived>();
  const onRead = new Set<string>();
  const restoreRequests: string[] = [];
  const sockets = new Set<Socket>();

  const keyOf = (url: URL): string | undefined => {
    const prefix = `/${bucket}/`;
    return url.pathname.startsWith(prefix)
      ? decodeURIComponent(url.pathname.slice(prefix.length))
      : undefined;
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const key = keyOf(url);
    // The object itself (the SDK adds `x-id=GetObject`, presigned URLs their X-Amz-* and
    // response-* parameters), not a subresource of it (tagging, restore, multipart).
    const isObjectRead =
      key !== undefined && key !== '' && !SUBRESOURCES.some((p) => url.searchParams.has(p));
    if (
      key !== undefined &&
      req.method === 'GET' &&
      isObjectRead &&
      !req.headers.range &&
      onRead.delete(key)
    ) {
      archived.set(key, { storageClass: 'GLACIER', restore: 'none', expiry: new Date(0) });
    }
    const state = key !== undefined ? archived.get(key) : undefined;
    if (state && key !== undefined && req.method === 'POST' && url.searchParams.has('restore')) {
      restoreRequests.push(key);
      void drain(req).then(() => {
        if (state.restore === 'ongoing')
          return xmlError(res, 409, 'RestoreAlreadyInProgress', 'Object restore is already in progress');
        const status = state.restore === 'done' ? 200 : 202;
        if (state.restore === 'none') state.restore = 'ongoing';
        res.writeHead(status, { 'content-length': 0 });
        res.end();
      });
      return;
    }
    if (state && req.method === 'GET' && isObjectRead && state.restore !== 'done') {
      void drain(req).then(() =>
        xmlError(res, 403, 'InvalidObjectState', "The operation is not valid for the object's storage class"),
      );
      return;
    }
    const upstream = request(
      {
        host: to.hostname,
        port: to.port,
        method: req.method,
        path: req.url,
        headers: req.headers,
      },
      (up) => {
        const headers = { ...up.headers };
        if (state && isObjectRead) {
          headers['x-amz-storage-class'] = state.storageClass;
          if (state.restore === 'ongoing') headers['x-amz-restore'] = 'ongoing-request="true"';
          if (state.restore === 'done')
            headers['x-amz-restore'] = `ongoing-request="false", expiry-date="${state.expiry.toUTCString()}"`;
        }
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    archive(key, storageClass = 'GLACIER') {
      archived.set(key, { storageClass, restore: 'none', expiry: new Date(0) });
    },
    archiveOnNextRead(key) {
      onRead.add(key);
    },
    finishRestore(key, expiry) {
      const s = archived.get(key);
      if (!s) throw new Error(`${key} is not archived`);
      s.restore = 'done';
      s.expiry = expiry;
    },
    restoreRequests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
