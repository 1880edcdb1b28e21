/**
 * Worker thread of sha256-offload.ts: keeps SHA-256 states by id and feeds them the buffers the
 * event loop hands over, so hashing an upload's bytes costs the event-loop thread one postMessage
 * per batch instead of the hash itself.
 *
 * Plain JavaScript on purpose: a worker thread does not inherit the tsx loader. Messages (in):
 * { op: 'new', id } | { op: 'update', id, bufs: Uint8Array[], bytes } (acked with { ack: id, bytes })
 * | { op: 'copy', id, to } | { op: 'file', id, req, path, bytes } | { op: 'digest', id, req }
 * | { op: 'drop', id }. Replies: { req, digest?: Uint8Array, error?: string }.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';

const states = new Map();
const READ = 1024 * 1024;

function state(id) {
  const h = states.get(id);
  if (!h) throw new Error(`sha256 worker: no state ${id}`);
  return h;
}

/** SHA-256 of the first `bytes` of a file (a state rebuilt after a restart). */
function hashFile(file, bytes) {
  const hash = createHash('sha256');
  if (bytes === 0) return hash;
  const buf = Buffer.allocUnsafe(Math.min(READ, bytes));
  const fd = openSync(file, 'r');
  try {
    let pos = 0;
    while (pos < bytes) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, bytes - pos), pos);
      if (n === 0) throw new Error(`${file} holds ${pos} bytes, fewer than the ${bytes} to hash`);
      hash.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
  return hash;
}

parentPort.on('message', (m) => {
  try {
    switch (m.op) {
      case 'new':
        states.set(m.id, createHash('sha256'));
        break;
      case 'update': {
        const h = state(m.id);
        for (const b of m.bufs) h.update(b);
        parentPort.postMessage({ ack: m.id, bytes: m.bytes });
        break;
      }
      case 'copy':
        states.set(m.to, state(m.id).copy());
        break;
      case 'file':
        states.set(m.id, hashFile(m.path, m.bytes));
        parentPort.postMessage({ req: m.req });
        break;
      case 'digest':
        parentPort.postMessage({ req: m.req, digest: state(m.id).copy().digest() });
        break;
      case 'drop':
        states.delete(m.id);
        break;
    }
  } catch (err) {
    if (m.op === 'update') parentPort.postMessage({ ack: m.id, bytes: m.bytes });
    if (m.req !== undefined) parentPort.postMessage({ req: m.req, error: String(err?.message ?? err) });
  }
});
