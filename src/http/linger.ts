/**
 * Bounded lingering close (after nginx's `lingering_close`).
 *
 * An early answer (a 403 for a forged upload signature, a 413/415, a 400 before the body was read)
 * leaves the client still sending. If the server then closes the socket with unread bytes in it, or
 * bytes keep arriving after the close, the kernel answers with a RST, and a RST can overtake the
 * answer: the client sees ECONNRESET, not the JSON error. Node closes such a connection with
 * `socket.destroySoon()` (from `resOnFinish` in `_http_server.js`, whenever the response was the
 * last one: `Connection: close` either way). For a request whose body is not complete we replace
 * that with: half-close (FIN after the answer is flushed), keep reading and discarding (Node's
 * parser is already dumping the unread body), and destroy the socket only when the body is complete,
 * the client ends, or a bound is reached (then a reset is acceptable: the answer left long before).
 *
 * Before the answer is written, an unread body too large to be worth draining (or of unknown size)
 * turns the answer into `Connection: close`; a small one is left to Node, which reads and drops it
 * and keeps the connection (cheaper than a new connection).
 *
 * Requests Node cannot parse (431 headers too large, 400 malformed) are answered by
 * `clientErrorHandler`: our JSON error shape (errors.ts `clientErrorResponse`), saying `Connection: close` (without it a
 * keep-alive client reuses the doomed socket for its next request, which then meets a reset) and
 * lingering within the same bounds.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { clientErrorResponse } from './errors.ts';

/**
 * Longest a closing connection lingers after its answer. Enough for the answer to reach a client on a
 * slow mobile link and for the client to stop; short enough that a client which never stops (a
 * slowloris) holds the socket only briefly. nginx allows 5 s between reads; we need less: we only
 * wait for the answer to arrive, not for a body we will never use.
 */
export const LINGER_MAX_MS = 2_000;

/**
 * Most bytes read and discarded after the answer. A client that stops writing the moment the answer
 * arrives can still have its kernel send buffer in flight: up to 4 MiB with Linux's default
 * `net.ipv4.tcp_wmem` ceiling. Reading that lets such a client end with a clean FIN; past it the
 * client is not stopping, and a reset (long after the answer) is fine.
 */
export const LINGER_MAX_BYTES = 4 * 1024 * 1024;

/**
 * An unread body of at most this many declared bytes is drained by Node and the connection kept
 * alive: reading 64 KiB (the JSON body limit) costs less than the client's next TCP and TLS
 * handshake. Larger or chunked bodies close the connection instead of being read to the end.
 */
export const KEEP_ALIVE_DRAIN_MAX_BYTES = 64 * 1024;

/**
 * How often a lingering socket's byte count is checked. The bytes bound can be overshot by what
 * arrives in one interval (about 1 MiB at 1 Gbit/s); a finer poll costs more wake-ups per socket.
 */
export const LINGER_CHECK_MS = 10;

/** Wires lingering close into `app`'s HTTP server: every route, and Fastify's own early answers. */
export function installLingeringClose(app: FastifyInstance): void {
  // The request each connection is on: Node calls destroySoon() after that request's answer.
  const current = new WeakMap<Socket, IncomingMessage>();
  app.server.on('request', (req: IncomingMessage) => current.set(req.socket, req));
  app.server.on('connection', (socket: Socket) => {
    const destroySoon = socket.destroySoon.bind(socket);
    socket.destroySoon = () => {
      const req = current.get(socket);
      if (req === undefined || req.complete || socket.destroyed) destroySoon();
      else linger(socket, req, destroySoon);
    };
  });

  app.addHook('onSend', async (request, reply) => {
    if (request.raw.complete || reply.hasHeader('connection')) return;
    const declared = Number(request.headers['content-length'] ?? NaN);
    if (!(declared <= KEEP_ALIVE_DRAIN_MAX_BYTES)) void reply.header('connection', 'close');
  });
}

/**
 * Half-closes `socket` and discards what still arrives for `req`, until the body is complete or the
 * client ends (then `close`: destroy once the answer is flushed) or a bound is hit (destroy now).
 */
function linger(socket: Socket, req: IncomingMessage, close: () => void): void {
  // Node's parser keeps reading the unread body and drops it (the request is dumped, so it emits no
  // 'data'); its end means nothing more is owed.
  const stop = bound(socket, close);
  req.once('end', stop);
  socket.once('close', () => req.off('end', stop));
  req.resume();
}

/**
 * Sends FIN after what is queued and enforces the bounds: the socket is destroyed once more than
 * LINGER_MAX_BYTES were read or LINGER_MAX_MS passed. Bytes are counted with `bytesRead`, polled
 * every LINGER_CHECK_MS: while Node's parser consumes the socket, no 'data' event reports them.
 * The client ending calls `close`; so does the returned function.
 */
function bound(socket: Socket, close: () => void): () => void {
  socket.end();
  const start = socket.bytesRead;
  const since = Date.now();
  const check = setInterval(() => {
    if (socket.bytesRead - start > LINGER_MAX_BYTES || Date.now() - since >= LINGER_MAX_MS) done(true);
  }, LINGER_CHECK_MS);
  check.unref();
  const done = (cut: boolean) => {
    clearInterval(check);
    socket.off('end', onEnd);
    socket.off('close', onClose);
    if (socket.destroyed) return;
    if (cut) socket.destroy();
    else close();
  };
  const onEnd = () => done(false);
  const onClose = () => done(true);
  socket.once('end', onEnd);
  socket.once('close', onClose);
  return onEnd;
}

/** Sockets `clientErrorHandler` has answered. */
const answered = new WeakSet<Socket>();

/**
 * Fastify's `clientErrorHandler`. Node calls it again for every chunk that reaches the failed
 * parser of a lingering socket; those calls change nothing.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (answered.has(socket)) return;
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.write(clientErrorResponse(err));
  answered.add(socket);
  bound(socket, () => destroyOnceFlushed(socket));
}

/** What Node's `socket.destroySoon()` does once the FIN is queued. */
function destroyOnceFlushed(socket: Socket): void {
  if (socket.writableFinished) socket.destroy();
  else socket.once('finish', () => socket.destroy());
}
