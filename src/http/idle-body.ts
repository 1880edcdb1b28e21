import { pipeline, Transform, type Readable } from 'node:stream';
import { AppError } from '../errors.ts';

/**
 * The request body, aborted with `408 request_timeout` when no byte arrives for `idleMs`: a client
 * trickling (or stalled) must not hold a socket, a file descriptor and a temp file for ever. The
 * consumer (the store) removes its temp file on the error, as for any failed upload. 0 = no limit.
 */
export function withIdleTimeout(body: Readable, idleMs: number): Readable {
  if (idleMs <= 0) return body;
  const timer = setTimeout(() => {
    out.destroy(
      new AppError(
        'request_timeout',
        `No bytes of the body arrived for ${Math.round(idleMs / 1000)} s; the upload was aborted.`,
      ),
    );
  }, idleMs);
  const out = new Transform({
    transform(chunk: Buffer, _enc, done) {
      timer.refresh();
      done(null, chunk);
    },
  });
  out.once('close', () => clearTimeout(timer));
  // Errors reach the consumer through `out`; the body's own state tells the route whether the
  // client went away.
  pipeline(body, out, () => clearTimeout(timer));
  return out;
}
