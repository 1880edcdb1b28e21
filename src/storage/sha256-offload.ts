/**
 * SHA-256 states kept in a worker thread (sha256-worker.mjs): the event-loop thread hands over
 * batches of bytes (≥ 1 MiB each from the tus staging writes) with one postMessage and goes on
 * receiving, while the hash runs on another core. The interface mirrors the parts of `Hash` the
 * upload paths use — update, copy, digest — with digest asynchronous.
 *
 * One worker per process, started on first use and unreferenced while idle (it never keeps a
 * process alive). Messages are handled in order, so a copy or digest posted after an update sees
 * its bytes. States whose handles are garbage-collected are dropped in the worker. If the worker
 * dies, every state it held is lost: their digests reject (callers rebuild or fail the request).
 */
import { createHash, type Hash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

const WORKER = new URL('./sha256-worker.mjs', import.meta.url);

interface Reply {
  req?: number;
  ack?: number;
  bytes?: number;
  digest?: Uint8Array;
  error?: string;
}

/** Messages that expect a reply (the thread adds `req`). */
type Request = { op: 'file'; id: number; path: string; bytes: number } | { op: 'digest'; id: number };
type Message =
  | { op: 'new'; id: number }
  | { op: 'update'; id: number; bufs: Uint8Array[]; bytes: number }
  | { op: 'copy'; id: number; to: number }
  | { op: 'drop'; id: number };

class HashThread {
  private worker: Worker | undefined;
  /** Generation of the worker: states of an earlier one are gone. */
  generation = 0;
  private nextId = 1;
  private nextReq = 1;
  private readonly requests = new Map<number, { resolve(r: Reply): void; reject(e: Error): void }>();
  private readonly acks = new Map<number, WeakRef<Sha256State>>();
  /** Requests and unacknowledged updates: while any, the worker keeps the process alive. */
  private outstanding = 0;
  private readonly dropped = new FinalizationRegistry<{ id: number; generation: number }>((s) => {
    this.acks.delete(s.id);
    if (s.generation === this.generation && this.worker) this.worker.postMessage({ op: 'drop', id: s.id });
  });

  newId(): number {
    return this.nextId++;
  }

  track(state: Sha256State, id: number): void {
    this.acks.set(id, new WeakRef(state));
    this.dropped.register(state, { id, generation: this.generation }, state);
  }

  untrack(state: Sha256State, id: number): void {
    this.acks.delete(id);
    this.dropped.unregister(state);
  }

  post(msg: Message, transfer: ArrayBuffer[] = []): void {
    if (msg.op === 'update') this.hold();
    this.thread().postMessage(msg, transfer);
  }

  request(msg: Request): Promise<Reply> {
    const req = this.nextReq++;
    this.hold();
    return new Promise<Reply>((resolve, reject) => {
      this.requests.set(req, { resolve, reject });
      this.thread().postMessage({ ...msg, req });
    });
  }

  private hold(): void {
    if (this.outstanding++ === 0) this.worker?.ref();
  }

  private release(): void {
    if (--this.outstanding === 0) this.worker?.unref();
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER);
    this.worker = worker;
    if (this.outstanding === 0) worker.unref();
    worker.on('message', (r: Reply) => {
      if (r.ack !== undefined) {
        this.release();
        this.acks
          .get(r.ack)
          ?.deref()
          ?.acked(r.bytes ?? 0);
        return;
      }
      const pending = this.requests.get(r.req!);
      if (!pending) return;
      this.requests.delete(r.req!);
      this.release();
      if (r.error !== undefined) pending.reject(new Error(r.error));
      else pending.resolve(r);
    });
    const lost = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.generation++;
      this.outstanding = 0;
      for (const p of this.requests.values()) p.reject(err);
      this.requests.clear();
      for (const ref of this.acks.values()) ref.deref()?.lost(err);
      this.acks.clear();
    };
    worker.on('error', lost);
    worker.on('exit', (code) => lost(new Error(`the sha256 worker thread exited (${code})`)));
    return worker;
  }
}

const thread = new HashThread();
let posted = 0;

/** Bytes handed to the hashing thread by this process so far (tests and diagnostics). */
export function offloadedBytes(): number {
  return posted;
}

/** A SHA-256 state that takes batches of bytes: in the hashing thread, or on this thread. */
export interface Sha256Batches {
  update(bufs: readonly Buffer[], opts?: { handOver?: boolean }): void;
  copy(): Sha256Batches;
  digest(): Promise<Buffer>;
  /** Bytes handed over and not hashed yet. */
  readonly backlog: number;
  drained(limit: number): Promise<void>;
}

/** A new empty state: in the hashing thread, or (`thread` false) hashed on the calling thread. */
export function sha256Batches(thread: boolean): Sha256Batches {
  return thread ? Sha256State.create() : new InlineSha256(createHash('sha256'));
}

/** The same interface over node:crypto on the calling thread (`TUS_HASH_THREAD=false`). */
export class InlineSha256 implements Sha256Batches {
  readonly backlog = 0;
  constructor(private readonly hash: Hash) {}
  update(bufs: readonly Buffer[]): void {
    for (const b of bufs) this.hash.update(b);
  }
  copy(): InlineSha256 {
    return new InlineSha256(this.hash.copy());
  }
  digest(): Promise<Buffer> {
    return Promise.resolve(this.hash.copy().digest());
  }
  drained(): Promise<void> {
    return Promise.resolve();
  }
}

/** A SHA-256 state in the hashing thread. */
export class Sha256State implements Sha256Batches {
  /** Bytes posted and not yet hashed. */
  private inflight = 0;
  private waiters: { limit: number; resolve(): void }[] = [];
  private failure: Error | undefined;
  private readonly generation = thread.generation;

  private constructor(private readonly id: number) {
    thread.track(this, id);
  }

  /** An empty state. */
  static create(): Sha256State {
    const s = new Sha256State(thread.newId());
    thread.post({ op: 'new', id: s.id });
    return s;
  }

  /** The state after the first `bytes` of `file` (read and hashed in the worker). */
  static async ofFile(file: string, bytes: number): Promise<Sha256State> {
    const s = new Sha256State(thread.newId());
    await thread.request({ op: 'file', id: s.id, path: file, bytes });
    return s;
  }

  /**
   * Adds `bufs` in order. With `handOver`, buffers that own their whole memory are transferred to
   * the worker (they are unusable here afterwards: only for bytes nobody reads again); the rest
   * are copied.
   */
  update(bufs: readonly Buffer[], opts: { handOver?: boolean } = {}): void {
    if (this.failure) return;
    const out: Uint8Array[] = [];
    const transfer: ArrayBuffer[] = [];
    let bytes = 0;
    for (const b of bufs) {
      if (b.length === 0) continue;
      bytes += b.length;
      const ab = b.buffer;
      if (
        opts.handOver &&
        ab instanceof ArrayBuffer &&
        b.byteOffset === 0 &&
        b.byteLength === ab.byteLength &&
        !transfer.includes(ab)
      ) {
        out.push(b);
        transfer.push(ab);
      } else {
        const copy = new Uint8Array(b);
        out.push(copy);
        transfer.push(copy.buffer);
      }
    }
    if (bytes === 0) return;
    this.inflight += bytes;
    posted += bytes;
    thread.post({ op: 'update', id: this.id, bufs: out, bytes }, transfer);
  }

  /** A new state equal to this one after every update posted so far. */
  copy(): Sha256State {
    const s = new Sha256State(thread.newId());
    if (this.failure) s.lost(this.failure);
    else thread.post({ op: 'copy', id: this.id, to: s.id });
    return s;
  }

  /** The digest of the bytes posted so far (the state stays usable). */
  async digest(): Promise<Buffer> {
    this.check();
    const r = await thread.request({ op: 'digest', id: this.id });
    return Buffer.from(r.digest!);
  }

  /** Bytes handed to the worker and not hashed yet. */
  get backlog(): number {
    return this.inflight;
  }

  /** Resolves once at most `limit` bytes wait in the worker (a bound on the memory they hold). */
  drained(limit: number): Promise<void> {
    if (this.inflight <= limit || this.failure) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ limit, resolve }));
  }

  /** @internal the worker hashed `bytes` of this state. */
  acked(bytes: number): void {
    this.inflight -= bytes;
    this.wake();
  }

  /** @internal the worker (and this state with it) is gone. */
  lost(err: Error): void {
    this.failure ??= err;
    this.inflight = 0;
    this.wake();
  }

  private wake(): void {
    const still: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (this.inflight <= w.limit || this.failure) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  private check(): void {
    if (!this.failure && this.generation !== thread.generation) {
      this.failure = new Error('the sha256 worker thread was restarted; this state is gone');
    }
    if (this.failure) throw this.failure;
  }
}
