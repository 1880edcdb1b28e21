/**
 * A client of ClamAV's daemon (clamd) for the `MalwareScanner` port: one connection per scan,
 * `zINSTREAM`, the bytes as length-prefixed chunks (4-byte big-endian length, then the data), a
 * zero-length chunk to end, then one NUL-terminated reply:
 *
 *   stream: OK                          → clean
 *   stream: <signature> FOUND           → infected
 *   INSTREAM size limit exceeded. ERROR → ScanLimitError (clamd's StreamMaxLength; it closes early)
 *   anything else, no reply, a refused connection, the time limit
 *                                       → ScannerUnavailableError (the job is retried)
 *
 * Written here rather than taken from npm: the protocol is a few lines, and the clients there
 * either wrap the clamscan/clamdscan binaries as well or report every failure alike, where the
 * worker must tell "infected", "too large" and "no verdict" apart (fail closed on the last).
 */
import net from 'node:net';
import {
  ScanLimitError,
  ScannerUnavailableError,
  type MalwareScanner,
  type ScanVerdict,
} from '../processing/malware-scan.ts';

export interface ClamdOptions {
  /** clamd's LocalSocket, or its TCPSocket (+ TCPAddr). */
  address: { socket: string } | { host: string; port: number };
  /** The whole exchange: connect, stream, verdict. */
  timeoutMs: number;
}

/** Chunks sent to clamd are at most this long (clamd reads each into memory). */
const CHUNK_BYTES = 256 * 1024;
/** A reply longer than this is not clamd's. */
const MAX_REPLY = 4096;

/** The connection ended without a reply while the body was being sent. */
class StreamCutError extends ScannerUnavailableError {}

export class ClamdClient implements MalwareScanner {
  constructor(private readonly opts: ClamdOptions) {}

  /** Where clamd is, for logs. */
  describe(): string {
    const a = this.opts.address;
    return 'socket' in a ? a.socket : `${a.host}:${a.port}`;
  }

  /** `PONG` from clamd within the time limit (start-up log, health). */
  async ping(signal?: AbortSignal): Promise<boolean> {
    try {
      return (await this.exchange('zPING\0', undefined, signal ?? new AbortController().signal)) === 'PONG';
    } catch {
      return false;
    }
  }

  async scan(body: AsyncIterable<Buffer>, signal: AbortSignal): Promise<ScanVerdict> {
    let reply: string;
    try {
      reply = await this.exchange('zINSTREAM\0', body, signal);
    } catch (err) {
      // clamd answers a stream over its StreamMaxLength and closes at once; a chunk written after
      // that fails (EPIPE/ECONNRESET) and Node drops the socket with the reply unread. A clamd
      // that still answers PING then cut this stream for its size, not because it is down.
      if (err instanceof StreamCutError && (await this.ping(signal))) {
        throw new ScanLimitError(
          `clamd at ${this.describe()} closed the stream before its verdict (StreamMaxLength below MALWARE_SCAN_MAX_BYTES?)`,
          { cause: err },
        );
      }
      throw err;
    }
    return parseReply(reply);
  }

  /** Sends `command` (and `body` as INSTREAM chunks), returns the reply without its NUL. */
  private exchange(command: string, body: AsyncIterable<Buffer> | undefined, signal: AbortSignal) {
    signal.throwIfAborted();
    const a = this.opts.address;
    const sock = 'socket' in a ? net.createConnection(a.socket) : net.createConnection(a.port, a.host);
    return new Promise<string>((resolve, reject) => {
      let reply = '';
      let settled = false;
      const finish = (err: Error | undefined, value?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        sock.destroy();
        if (err) reject(err);
        else resolve(value!);
      };
      let sent = false;
      const unavailable = (why: string, cause?: unknown) => {
        const message = `clamd at ${this.describe()}: ${why}`;
        // Cut off while a body was going out: maybe the size limit (see scan()).
        finish(
          sent ? new StreamCutError(message, { cause }) : new ScannerUnavailableError(message, { cause }),
        );
      };
      const timer = setTimeout(
        () => unavailable(`no verdict within ${this.opts.timeoutMs} ms`),
        this.opts.timeoutMs,
      );
      const onAbort = () => finish(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      signal.addEventListener('abort', onAbort, { once: true });

      sock.on('data', (d: Buffer) => {
        reply += d.toString('utf8');
        const end = reply.indexOf('\0');
        if (end >= 0) finish(undefined, reply.slice(0, end).trim());
        else if (reply.length > MAX_REPLY) unavailable('an unexpected reply');
      });
      // clamd closes after its reply; an early close with a reply but no NUL still counts.
      sock.on('end', () =>
        reply.trim() !== '' ? finish(undefined, reply.trim()) : unavailable('closed without a reply'),
      );
      sock.on('error', (err: NodeJS.ErrnoException) => {
        // Writing after clamd refused the stream (size limit) fails with EPIPE/ECONNRESET: its
        // reply, if any, is what counts.
        if (reply.trim() !== '') finish(undefined, reply.trim());
        else unavailable(err.code ?? err.message, err);
      });
      sock.once('connect', () => {
        sock.write(command);
        if (!body) return;
        sent = true;
        send(sock, body).catch((err: unknown) => {
          // The source failed (store trouble, or the object grew past its cap): not clamd's fault.
          if (err instanceof ScanLimitError) finish(err);
          else if (!sock.destroyed) finish(err instanceof Error ? err : new Error(String(err)));
        });
      });
    });
  }
}

/** The body as INSTREAM chunks, then the terminator, respecting the socket's backpressure. */
async function send(sock: net.Socket, body: AsyncIterable<Buffer>): Promise<void> {
  const write = async (buf: Buffer) => {
    if (sock.destroyed) return;
    if (!sock.write(buf)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          sock.off('drain', done);
          sock.off('close', done);
          resolve();
        };
        sock.on('drain', done);
        sock.on('close', done);
      });
    }
  };
  for await (const chunk of body) {
    for (let at = 0; at < chunk.length && !sock.destroyed; at += CHUNK_BYTES) {
      const part = chunk.subarray(at, Math.min(chunk.length, at + CHUNK_BYTES));
      const len = Buffer.allocUnsafe(4);
      len.writeUInt32BE(part.length);
      await write(Buffer.concat([len, part]));
      // Let a reply that came meanwhile be read before the next write: clamd answers "size limit
      // exceeded" and closes, and a write after that fails (EPIPE) and discards the unread reply.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    if (sock.destroyed) return;
  }
  await write(Buffer.alloc(4));
}

/** clamd's reply to INSTREAM → the verdict (or the error it stands for). */
export function parseReply(reply: string): ScanVerdict {
  if (reply === 'stream: OK') return { infected: false };
  const found = /^stream: (.+) FOUND$/.exec(reply);
  if (found) return { infected: true, signature: found[1]! };
  if (/size limit exceeded/i.test(reply)) throw new ScanLimitError(`clamd: ${reply}`);
  throw new ScannerUnavailableError(`clamd answered: ${reply.slice(0, 200)}`);
}
