/**
 * A test-only Google Cloud Storage stand-in, written for this project: no faithful GCS emulator
 * installs here (see docs/DEPLOY-CLOUD-RUN.md, "What is proven where"). It speaks the subset of
 * the JSON API (metadata, lists, delete, bucket get/create/patch) and the XML API (object PUT/GET,
 * multipart uploads) that the GCS store uses, keeps objects in memory, and is strict where GCS
 * is documented to be:
 *
 * - every request is authenticated: a V4 signed URL (GOOG4-RSA-SHA256, verified with the dummy
 *   service account's public key: canonical request rebuilt from the request as received, every
 *   signed header must be present with the signed value, expiry checked) or a bearer token that
 *   is a JWT self-signed by that service account;
 * - `x-goog-content-length-range` (400 on a body outside it), `x-goog-if-generation-match: 0`
 *   (412 when an object exists), `Content-MD5` (400 BadDigest), and the multipart rules (ETags,
 *   ascending part numbers, 5 MiB minimum for all parts but the last).
 *
 * It can also answer like the IAM Credentials signBlob API (`/v1/projects/-/serviceAccounts/
 * EMAIL:signBlob`, bearer token required), signing with the same key, for the keyless path.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  createSign,
  createVerify,
  randomUUID,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CRC32C } from '@google-cloud/storage';
import { importSPKI, jwtVerify } from 'jose';

const here = path.dirname(fileURLToPath(import.meta.url));
export const GCS_KEY_FILE = path.resolve(here, '../fixtures/gcs/test_service_account.not-a-test.json');
const account = JSON.parse(readFileSync(GCS_KEY_FILE, 'utf8')) as {
  client_email: string;
  private_key: string;
};
export const GCS_CLIENT_EMAIL = account.client_email;
const privateKey = createPrivateKey(account.private_key);
const publicKey = createPublicKey(privateKey);
const MiB = 1024 * 1024;

interface StoredObject {
  data: Buffer;
  contentType: string;
  generation: number;
  updated: Date;
}
interface Upload {
  bucket: string;
  key: string;
  contentType: string;
  initiated: Date;
  parts: Map<number, { data: Buffer; etag: string }>;
}
interface Bucket {
  meta: Record<string, unknown>;
  objects: Map<string, StoredObject>;
}

export interface GcsStandin {
  /** http://127.0.0.1:PORT: GCS_API_ENDPOINT. */
  endpoint: string;
  /** The signBlob base (GCS_SIGNING_ENDPOINT). */
  signingEndpoint: string;
  buckets: Map<string, Bucket>;
  uploads: Map<string, Upload>;
  /** Requests refused, by reason (tests assert the stand-in actually checked). */
  refusals: string[];
  signBlobCalls: number;
  createBucket(name: string): void;
  close(): Promise<void>;
}

/** RFC 3986 strict encoding, as Google's canonical query. */
const enc = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
const md5 = (b: Buffer) => createHash('md5').update(b);
const crc32c = (b: Buffer) => {
  const c = new CRC32C();
  c.update(b);
  return c.toString();
};

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startGcsStandin(): Promise<GcsStandin> {
  const buckets = new Map<string, Bucket>();
  const uploads = new Map<string, Upload>();
  const refusals: string[] = [];
  let generation = 1_700_000_000_000_000;
  const state = { signBlobCalls: 0 };
  const spki = await importSPKI(publicKey.export({ type: 'spki', format: 'pem' }) as string, 'RS256');

  function refuse(status: number, code: string, message: string): never {
    refusals.push(code);
    throw new Refusal(status, code, message);
  }

  /** The V4 signature of a signed URL, rebuilt from the request as received. */
  function verifySigned(req: IncomingMessage, rawPath: string, pieces: string[]): void {
    const params = pieces.map((p): [string, string] => {
      const i = p.indexOf('=');
      return i < 0
        ? [decodeURIComponent(p), '']
        : [decodeURIComponent(p.slice(0, i)), decodeURIComponent(p.slice(i + 1))];
    });
    const get = (k: string) => params.find(([n]) => n === k)?.[1];
    const signature = get('X-Goog-Signature') ?? '';
    if (get('X-Goog-Algorithm') !== 'GOOG4-RSA-SHA256') refuse(400, 'InvalidArgument', 'algorithm');
    const credential = get('X-Goog-Credential') ?? '';
    const [email, datestamp, location, service, kind] = credential.split('/');
    if (
      email !== GCS_CLIENT_EMAIL ||
      location !== 'auto' ||
      service !== 'storage' ||
      kind !== 'goog4_request'
    )
      refuse(403, 'SignatureDoesNotMatch', 'credential');
    const date = get('X-Goog-Date') ?? '';
    const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/.exec(date);
    if (!m || datestamp !== date.slice(0, 8)) refuse(400, 'InvalidArgument', 'date');
    const start = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
    const expires = Number(get('X-Goog-Expires'));
    if (!(expires > 0 && expires <= 7 * 24 * 3600)) refuse(400, 'InvalidArgument', 'expires');
    if (Date.now() > start + expires * 1000) refuse(400, 'ExpiredToken', 'the signed URL expired');
    if (Date.now() < start - 60_000) refuse(403, 'SignatureDoesNotMatch', 'signed in the future');
    const signedHeaders = (get('X-Goog-SignedHeaders') ?? '').split(';');
    if (!signedHeaders.includes('host')) refuse(400, 'InvalidArgument', 'host must be signed');
    const canonicalQuery = params
      .filter(([k]) => k !== 'X-Goog-Signature')
      .map(([k, v]) => [enc(k), enc(v)])
      .sort((a, b) => (a[0]! < b[0]! ? -1 : 1))
      .map(([k, v]) => `${k}=${v}`)
      .join('&');
    const headerLines = signedHeaders.map((h) => {
      // Google signs the host without its port (the conformance cases on localhost:8080 do).
      const v = h === 'host' ? req.headers.host?.replace(/:\d+$/, '') : req.headers[h];
      if (v === undefined) refuse(403, 'SignatureDoesNotMatch', `signed header ${h} not sent`);
      return `${h}:${String(v)
        .trim()
        .replace(/\s{2,}/g, ' ')}\n`;
    });
    const canonicalRequest = [
      req.method,
      rawPath,
      canonicalQuery,
      headerLines.join(''),
      signedHeaders.join(';'),
      'UNSIGNED-PAYLOAD',
    ].join('\n');
    const toSign = [
      'GOOG4-RSA-SHA256',
      date,
      `${datestamp}/auto/storage/goog4_request`,
      createHash('sha256').update(canonicalRequest).digest('hex'),
    ].join('\n');
    const ok = createVerify('RSA-SHA256').update(toSign).verify(publicKey, Buffer.from(signature, 'hex'));
    if (!ok) refuse(403, 'SignatureDoesNotMatch', 'the signature does not match');
  }

  async function verifyBearer(req: IncomingMessage): Promise<void> {
    const auth = req.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ')) refuse(401, 'AuthenticationRequired', 'no credentials');
    const token = auth.slice(7);
    try {
      const { payload } = await jwtVerify(token, spki, { algorithms: ['RS256'] });
      if (payload.iss !== GCS_CLIENT_EMAIL) throw new Error('issuer');
    } catch {
      refuse(401, 'AuthenticationRequired', 'bad bearer token');
    }
  }

  const bucketOf = (name: string) => buckets.get(name) ?? refuse(404, 'NoSuchBucket', name);

  function objectJson(bucket: string, key: string, o: StoredObject) {
    return {
      kind: 'storage#object',
      bucket,
      name: key,
      size: String(o.data.length),
      contentType: o.contentType,
      generation: String(o.generation),
      md5Hash: md5(o.data).digest('base64'),
      crc32c: crc32c(o.data),
      etag: `C${o.generation}`,
      updated: o.updated.toISOString(),
      timeCreated: o.updated.toISOString(),
    };
  }

  function checkWriteHeaders(req: IncomingMessage, b: Bucket, key: string, body: Buffer): void {
    const range = req.headers['x-goog-content-length-range'];
    if (range !== undefined) {
      const [min, max] = String(range).split(',').map(Number);
      if (body.length > max!) refuse(400, 'EntityTooLarge', 'outside x-goog-content-length-range');
      if (body.length < min!) refuse(400, 'EntityTooSmall', 'outside x-goog-content-length-range');
    }
    const cmd5 = req.headers['content-md5'];
    if (cmd5 !== undefined && cmd5 !== md5(body).digest('base64')) refuse(400, 'BadDigest', 'Content-MD5');
    const match = req.headers['x-goog-if-generation-match'];
    if (match !== undefined) {
      const current = b.objects.get(key)?.generation ?? 0;
      if (String(current) !== String(match)) refuse(412, 'PreconditionFailed', 'x-goog-if-generation-match');
    }
  }

  function store(b: Bucket, key: string, data: Buffer, contentType: string): StoredObject {
    const o = { data, contentType, generation: ++generation, updated: new Date() };
    b.objects.set(key, o);
    return o;
  }

  const xml = (res: ServerResponse, status: number, body: string) => {
    res.writeHead(status, { 'content-type': 'application/xml; charset=UTF-8' });
    res.end(`<?xml version="1.0" encoding="UTF-8"?>${body}`);
  };
  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify(body));
  };
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

  async function readBodyOf(req: IncomingMessage): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    const rawPath = q < 0 ? raw : raw.slice(0, q);
    const pieces =
      q < 0
        ? []
        : raw
            .slice(q + 1)
            .split('&')
            .filter(Boolean);
    const query = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
    const method = req.method ?? 'GET';

    // ---- IAM Credentials signBlob ---------------------------------------------------------
    const blob = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):signBlob$/.exec(rawPath);
    if (blob && method === 'POST') {
      if (!(req.headers.authorization ?? '').startsWith('Bearer '))
        refuse(401, 'UNAUTHENTICATED', 'no token');
      if (decodeURIComponent(blob[1]!) !== GCS_CLIENT_EMAIL)
        refuse(403, 'PERMISSION_DENIED', 'not this account');
      const { payload } = JSON.parse((await readBodyOf(req)).toString('utf8')) as { payload: string };
      state.signBlobCalls++;
      const signedBlob = createSign('RSA-SHA256')
        .update(Buffer.from(payload, 'base64'))
        .sign(privateKey, 'base64');
      return json(res, 200, { keyId: 'ffffffffffffffffffffffffffffffffffffffff', signedBlob });
    }

    if (query.has('X-Goog-Signature')) verifySigned(req, rawPath, pieces);
    else await verifyBearer(req);

    // ---- JSON API ---------------------------------------------------------------------------
    if (rawPath.startsWith('/storage/v1/')) {
      const parts = rawPath.slice('/storage/v1/'.length).split('/');
      if (parts[0] !== 'b') refuse(404, 'notFound', rawPath);
      if (parts.length === 1 && method === 'POST') {
        const meta = JSON.parse((await readBodyOf(req)).toString('utf8')) as Record<string, unknown>;
        const name = String(meta['name']);
        if (buckets.has(name)) refuse(409, 'conflict', 'bucket exists');
        buckets.set(name, { meta: { ...meta, name }, objects: new Map() });
        return json(res, 200, buckets.get(name)!.meta);
      }
      const name = decodeURIComponent(parts[1] ?? '');
      const b = buckets.get(name);
      if (!b)
        return json(res, 404, { error: { code: 404, message: 'The specified bucket does not exist.' } });
      if (parts.length === 2) {
        if (method === 'GET') return json(res, 200, b.meta);
        if (method === 'PATCH') {
          Object.assign(b.meta, JSON.parse((await readBodyOf(req)).toString('utf8')));
          return json(res, 200, b.meta);
        }
      }
      if (parts.length === 3 && parts[2] === 'o' && method === 'GET') {
        const keys = [...b.objects.keys()].sort();
        const max = Number(query.get('maxResults') ?? 1000);
        const from = Number(query.get('pageToken') ?? 0);
        const page = keys.slice(from, from + max);
        return json(res, 200, {
          kind: 'storage#objects',
          items: page.map((k) => objectJson(name, k, b.objects.get(k)!)),
          ...(from + max < keys.length ? { nextPageToken: String(from + max) } : {}),
        });
      }
      if (parts.length === 4 && parts[2] === 'o') {
        const key = decodeURIComponent(parts[3]!);
        const o = b.objects.get(key);
        if (!o) return json(res, 404, { error: { code: 404, message: `No such object: ${name}/${key}` } });
        if (method === 'GET') return json(res, 200, objectJson(name, key, o));
        if (method === 'DELETE') {
          b.objects.delete(key);
          res.writeHead(204).end();
          return;
        }
      }
      refuse(501, 'NotImplemented', `${method} ${rawPath}`);
    }

    // ---- XML API ------------------------------------------------------------------------------
    const segs = rawPath.slice(1).split('/');
    const bucketName = decodeURIComponent(segs[0] ?? '');
    const key = segs.slice(1).map(decodeURIComponent).join('/');
    const b = bucketOf(bucketName);
    const uploadId = query.get('uploadId');

    if (key === '') {
      if (method === 'GET' && query.has('uploads')) {
        const list = [...uploads.entries()].filter(([, u]) => u.bucket === bucketName);
        return xml(
          res,
          200,
          `<ListMultipartUploadsResult><Bucket>${esc(bucketName)}</Bucket><IsTruncated>false</IsTruncated>${list
            .map(
              ([id, u]) =>
                `<Upload><Key>${esc(u.key)}</Key><UploadId>${id}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`,
            )
            .join('')}</ListMultipartUploadsResult>`,
        );
      }
      refuse(501, 'NotImplemented', `${method} bucket`);
    }

    if (uploadId !== null) {
      const u = uploads.get(uploadId);
      if (!u || u.bucket !== bucketName || u.key !== key) refuse(404, 'NoSuchUpload', uploadId);
      if (method === 'PUT') {
        const n = Number(query.get('partNumber'));
        if (!Number.isInteger(n) || n < 1 || n > 10_000) refuse(400, 'InvalidArgument', 'partNumber');
        const data = await readBodyOf(req);
        checkWriteHeaders(req, b, '\u0000no-object', data);
        const etag = `"${md5(data).digest('hex')}"`;
        u.parts.set(n, { data, etag });
        res.writeHead(200, { etag }).end();
        return;
      }
      if (method === 'GET') {
        const listed = [...u.parts.entries()].sort((x, y) => x[0] - y[0]);
        return xml(
          res,
          200,
          `<ListPartsResult><Bucket>${esc(bucketName)}</Bucket><Key>${esc(key)}</Key><UploadId>${uploadId}</UploadId><IsTruncated>false</IsTruncated>${listed
            .map(
              ([n, p]) =>
                `<Part><PartNumber>${n}</PartNumber><ETag>${p.etag}</ETag><Size>${p.data.length}</Size></Part>`,
            )
            .join('')}</ListPartsResult>`,
        );
      }
      if (method === 'DELETE') {
        uploads.delete(uploadId);
        res.writeHead(204).end();
        return;
      }
      if (method === 'POST') {
        const doc = (await readBodyOf(req)).toString('utf8');
        const refs = [
          ...doc.matchAll(/<Part>\s*<PartNumber>(\d+)<\/PartNumber>\s*<ETag>([^<]*)<\/ETag>\s*<\/Part>/g),
        ].map((x) => ({ n: Number(x[1]), etag: x[2]!.replace(/&quot;/g, '"') }));
        if (refs.length === 0) refuse(400, 'MalformedXML', 'no parts');
        const strip = (e: string) => e.replace(/"/g, '');
        for (const [i, r] of refs.entries()) {
          if (i > 0 && r.n <= refs[i - 1]!.n) refuse(400, 'InvalidPartOrder', 'parts must ascend');
          const p = u.parts.get(r.n);
          if (!p || strip(p.etag) !== strip(r.etag)) refuse(400, 'InvalidPart', `part ${r.n}`);
          if (i < refs.length - 1 && p.data.length < 5 * MiB) refuse(400, 'EntityTooSmall', `part ${r.n}`);
        }
        checkWriteHeaders(req, b, key, Buffer.alloc(0));
        const data = Buffer.concat(refs.map((r) => u.parts.get(r.n)!.data));
        store(b, key, data, u.contentType);
        uploads.delete(uploadId);
        return xml(
          res,
          200,
          `<CompleteMultipartUploadResult><Bucket>${esc(bucketName)}</Bucket><Key>${esc(key)}</Key><ETag>"${md5(data).digest('hex')}-${refs.length}"</ETag></CompleteMultipartUploadResult>`,
        );
      }
      refuse(501, 'NotImplemented', `${method} upload`);
    }

    if (method === 'POST' && query.has('uploads')) {
      const id = randomUUID().replace(/-/g, '');
      uploads.set(id, {
        bucket: bucketName,
        key,
        contentType: String(req.headers['content-type'] ?? 'application/octet-stream'),
        initiated: new Date(),
        parts: new Map(),
      });
      return xml(
        res,
        200,
        `<InitiateMultipartUploadResult><Bucket>${esc(bucketName)}</Bucket><Key>${esc(key)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
      );
    }
    if (method === 'PUT') {
      const data = await readBodyOf(req);
      checkWriteHeaders(req, b, key, data);
      const o = store(b, key, data, String(req.headers['content-type'] ?? 'application/octet-stream'));
      res
        .writeHead(200, { etag: `"${md5(data).digest('hex')}"`, 'x-goog-generation': String(o.generation) })
        .end();
      return;
    }
    if (method === 'GET' || method === 'HEAD') {
      const o = b.objects.get(key) ?? refuse(404, 'NoSuchKey', key);
      const headers: Record<string, string> = {
        'content-type': query.get('response-content-type') ?? o.contentType,
        etag: `"${md5(o.data).digest('hex')}"`,
        'x-goog-generation': String(o.generation),
        'x-goog-hash': `crc32c=${crc32c(o.data)},md5=${md5(o.data).digest('base64')}`,
        'accept-ranges': 'bytes',
      };
      const disposition = query.get('response-content-disposition');
      if (disposition !== null) headers['content-disposition'] = disposition;
      const range = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
      let body = o.data;
      let status = 200;
      if (range) {
        const start = Number(range[1]);
        const end = Math.min(range[2] ? Number(range[2]) : o.data.length - 1, o.data.length - 1);
        if (start > end) refuse(416, 'InvalidRange', 'range');
        body = o.data.subarray(start, end + 1);
        status = 206;
        headers['content-range'] = `bytes ${start}-${end}/${o.data.length}`;
      }
      headers['content-length'] = String(body.length);
      res.writeHead(status, headers);
      res.end(method === 'HEAD' ? undefined : body);
      return;
    }
    if (method === 'DELETE') {
      if (!b.objects.delete(key)) refuse(404, 'NoSuchKey', key);
      res.writeHead(204).end();
      return;
    }
    refuse(501, 'NotImplemented', `${method} ${rawPath}`);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const r = err instanceof Refusal ? err : new Refusal(500, 'InternalError', String(err));
      if (res.headersSent) return res.destroy();
      // Drain what the client still sends so it reads the answer instead of a reset.
      req.resume();
      if (req.url?.startsWith('/storage/v1/') || req.url?.includes(':signBlob'))
        return json(res, r.status, { error: { code: r.status, message: r.message, status: r.code } });
      xml(res, r.status, `<Error><Code>${r.code}</Code><Message>${esc(r.message)}</Message></Error>`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    signingEndpoint: `${endpoint}/v1/projects/-/serviceAccounts/`,
    buckets,
    uploads,
    refusals,
    get signBlobCalls() {
      return state.signBlobCalls;
    },
    createBucket(name: string) {
      buckets.set(name, { meta: { name }, objects: new Map() });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
