/**
 * Lingering close (src/http/linger.ts), over raw sockets against the real server. An answer sent
 * before the request body was read must reach the client as its JSON, followed by a FIN, not a
 * reset; the server then drains the body within a time and a byte bound and closes the connection.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LINGER_MAX_BYTES, LINGER_MAX_MS } from '../../src/http/linger.ts';
import { call, startTestServer, type TestServer } from '../helpers/server.ts';

let t: TestServer;
let port: number;
/** The server's side of each connection, by the client's port. */
const serverSockets = new Map<number, net.Socket>();
let forgedUpload: string;
/** A device's `Authorization`: the JSON route authenticates before it looks at the content type. */
let authorization: string;

before(async () => {
  t = await startTestServer();
  port = Number(new URL(t.base).port);
  t.server.app.server.on('connection', (s: net.Socket) => serverSockets.set(s.remotePort!, s));
  const dev = await t.device('linger');
  authorization = dev.auth.authorization!;
  const s = await call(t.api('/media'), {
    method: 'POST',
    headers: dev.auth,
    json: { fileName: 'a.jpg', mimeType: 'image/jpeg', bytes: 1024 },
  });
  assert.equal(s.status, 201, s.text);
  const url = new URL(s.body.upload.url as string);
  url.searchParams.set('sig', 'A'.repeat(43));
  forgedUpload = url.pathname + url.search;
});
after(async () => {
  await t?.close();
});

interface Outcome {
  status: number | undefined;
  body: string;
  /** Connection: close on the answer. */
  close: boolean;
  /** Socket error code, if any (ECONNRESET, EPIPE). */
  error: string | undefined;
  /** The server half-closed (FIN) rather than only reset. */
  fin: boolean;
  /** ms from the first byte sent to the complete answer / to the socket closing. */
  answeredAt: number | undefined;
  closedAt: number;
  /** Body bytes the client's socket accepted. */
  sent: number;
  localPort: number;
}

interface Send {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Body bytes to send; Infinity for a client that never stops. */
  bytes: number;
  chunk: number;
  /** Pause between chunks; 0 writes as fast as the socket takes them. */
  everyMs: number;
  /** Stop sending and end once the answer is in (a client that reads its answer). */
  stopOnAnswer?: boolean;
}

/** One request on a fresh socket that ignores the server's FIN and keeps sending (unless told). */
function send(o: Send): Promise<Outcome> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const t0 = Date.now();
    const out: Outcome = {
      status: undefined,
      body: '',
      close: false,
      error: undefined,
      fin: false,
      answeredAt: undefined,
      closedAt: 0,
      sent: 0,
      localPort: 0,
    };
    let raw = Buffer.alloc(0);
    let stopped = false;
    sock.on('data', (d: Buffer) => {
      raw = Buffer.concat([raw, d]);
      const headEnd = raw.indexOf('\r\n\r\n');
      if (headEnd < 0 || out.answeredAt !== undefined) return;
      const head = raw.subarray(0, headEnd).toString('latin1');
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      if (raw.length < headEnd + 4 + length) return;
      out.status = Number(head.split(' ')[1]);
      out.close = /\r\nconnection: *close/i.test(head);
      out.body = raw.subarray(headEnd + 4, headEnd + 4 + length).toString('utf8');
      out.answeredAt = Date.now() - t0;
      if (o.stopOnAnswer) {
        stopped = true;
        sock.end();
      }
    });
    // A client done sending closes once the server has: it has its answer.
    const endIfDone = () => {
      if (out.fin && out.sent >= o.bytes && !sock.writableEnded) sock.end();
    };
    sock.on('end', () => {
      out.fin = true;
      endIfDone();
    });
    sock.on('error', (e: NodeJS.ErrnoException) => (out.error ??= e.code ?? e.message));
    // A server that never closes fails the test instead of hanging it.
    const giveUp = setTimeout(() => {
      out.error ??= 'still open after 10 s';
      sock.destroy();
    }, 10_000);
    sock.on('close', () => {
      clearTimeout(giveUp);
      stopped = true;
      out.closedAt = Date.now() - t0;
      resolve(out);
    });
    sock.on('connect', () => {
      out.localPort = sock.localPort!;
      const head = Object.entries({ host: 'x', ...o.headers })
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      sock.write(`${o.method} ${o.path} HTTP/1.1\r\n${head}\r\n`);
      const chunk = Buffer.alloc(o.chunk, 1);
      const pump = (): void => {
        while (!stopped && !sock.destroyed && out.sent < o.bytes) {
          const n = Math.min(chunk.length, o.bytes - out.sent);
          out.sent += n;
          const more = sock.write(n === chunk.length ? chunk : chunk.subarray(0, n));
          if (out.sent >= o.bytes) endIfDone();
          if (o.everyMs > 0) {
            setTimeout(pump, o.everyMs);
            return;
          }
          if (!more) {
            sock.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  });
}

/** The server's side of `o`'s connection is closed (within `ms`). */
async function serverClosed(o: Outcome, ms = 1000): Promise<void> {
  const s = serverSockets.get(o.localPort);
  assert.ok(s, 'the server saw the connection');
  for (let waited = 0; !s.destroyed && waited < ms; waited += 20) await sleep(20);
  assert.ok(s.destroyed, 'the server closed its side');
}

const MiB = 1024 * 1024;
/** A client that never stops declares a terabyte. */
const declared = (bytes: number) => (Number.isFinite(bytes) ? bytes : 1024 * 1024 * MiB);
const upload = (o: Partial<Send> & Pick<Send, 'bytes'>): Send => ({
  method: 'PUT',
  path: forgedUpload,
  headers: { 'content-type': 'image/jpeg', 'content-length': String(declared(o.bytes)) },
  chunk: 64 * 1024,
  everyMs: 0,
  ...o,
});
/** A JSON route refusing a text/plain body with 415 before reading it (Node would keep-alive and read it all). */
const unsupported = (o: Partial<Send> & Pick<Send, 'bytes'>): Send => ({
  method: 'POST',
  path: '/api/v1/media',
  headers: { authorization, 'content-type': 'text/plain', 'content-length': String(declared(o.bytes)) },
  chunk: 64 * 1024,
  everyMs: 0,
  ...o,
});

test('refused 4 MiB uploads, answered mid-body, get their JSON 403 and a FIN, never a reset', async () => {
  for (let round = 0; round < 2; round++) {
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        // Half read their answer and stop; half send the whole body regardless (most HTTP clients).
        send(upload({ bytes: 4 * MiB, chunk: 128 * 1024, everyMs: 10, stopOnAnswer: i % 2 === 0 })),
      ),
    );
    for (const r of results) {
      assert.equal(r.error, undefined, `no reset (${JSON.stringify(r)})`);
      assert.equal(r.status, 403);
      assert.equal((JSON.parse(r.body) as { error: { code: string } }).error.code, 'signature_invalid');
      assert.ok(r.close, 'the answer says Connection: close');
      assert.ok(r.fin, 'the server half-closed');
      assert.ok(r.answeredAt! <= r.closedAt, 'answered before the close');
      await serverClosed(r);
    }
    // Mid-body: the answer came long before a full-body client had sent it all.
    assert.ok(results.some((r) => r.sent < 4 * MiB));
  }
});

for (const [name, make] of [
  ['a refused upload', upload],
  ['a 415 JSON route', unsupported],
] as const) {
  test(`${name}: a client that never stops sending is cut off at the time bound`, async () => {
    const r = await send(make({ bytes: Infinity, chunk: 4 * 1024, everyMs: 20 }));
    assert.ok(r.status === 403 || r.status === 415, `answered (${JSON.stringify(r)})`);
    assert.ok(r.close && r.fin, 'answered with Connection: close, then FIN');
    const lingered = r.closedAt - r.answeredAt!;
    assert.ok(lingered >= LINGER_MAX_MS - 100, `lingered ${lingered} ms`);
    assert.ok(lingered < LINGER_MAX_MS + 1500, `cut off ${lingered} ms after the answer`);
    await serverClosed(r);
  });

  test(`${name}: a body past the byte bound is cut off after the bound`, async () => {
    const bytes = 512 * MiB;
    const r = await send(make({ bytes, chunk: 256 * 1024, everyMs: 0 }));
    assert.ok(r.status === 403 || r.status === 415, `answered (${JSON.stringify(r)})`);
    assert.ok(r.close && r.fin, 'answered with Connection: close, then FIN');
    assert.ok(r.closedAt - r.answeredAt! < LINGER_MAX_MS, 'cut by bytes, not by time');
    assert.ok(r.sent < bytes / 4, `sent ${r.sent} bytes before the cut`);
    await serverClosed(r);
    const read = serverSockets.get(r.localPort)!.bytesRead;
    // Past the bound by at most what arrives between two checks (loopback is fast).
    assert.ok(read > LINGER_MAX_BYTES && read < LINGER_MAX_BYTES + 32 * MiB, `server read ${read} bytes`);
  });
}

test('a small unread body keeps the connection alive: Node drains it, the next request is answered', async () => {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  let got = '';
  sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
  const body = 'x'.repeat(10_000);
  sock.write(
    `POST /api/v1/media HTTP/1.1\r\nHost: x\r\nAuthorization: ${authorization}\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n`,
  );
  for (let i = 0; i < 100 && !got.includes('\r\n\r\n'); i++) await sleep(10);
  assert.match(got, /^HTTP\/1.1 415 /);
  assert.doesNotMatch(got, /connection: close/i);
  sock.write(body);
  sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  for (let i = 0; i < 100 && !/HTTP\/1.1 200 /.test(got); i++) await sleep(10);
  assert.match(got, /HTTP\/1.1 200 /);
  sock.destroy();
});

test('a request Node cannot parse (headers too large) is answered 431 with Connection: close and a FIN', async () => {
  const r = await send({
    method: 'GET',
    path: '/healthz',
    headers: { 'x-huge': 'h'.repeat(100_000) },
    bytes: 0,
    chunk: 1,
    everyMs: 0,
    stopOnAnswer: true,
  });
  assert.equal(r.status, 431);
  assert.ok(r.close && r.fin, 'Connection: close, then FIN');
  assert.equal(r.error, undefined);
  await serverClosed(r);
});
