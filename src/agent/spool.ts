/**
 * The agent's durable spool. One capture is one file in `queue/`, named
 * `<capturedAt>_<sha256 prefix>[_<original name>].<ext>`, so the name alone carries the capture
 * time and a message id derived from content + time: a crash or retry re-sends the same message id
 * and the server answers with the record it already has instead of creating another.
 *
 * A capture enters the queue by one atomic rename (after fsync) and leaves it only when the
 * server has confirmed completion (or rejected it for good: then it moves to `rejected/`).
 * Disk use is bounded: past `maxBytes` or `maxFiles`, the oldest captures are dropped with a log line.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';

export interface SpoolLimits {
  maxBytes: number;
  maxFiles: number;
}

export interface SpoolEntry {
  /** File name in the queue; also the message id (minus the extension and original name). */
  name: string;
  path: string;
  messageId: string;
  capturedAt: Date;
  fileName: string;
  bytes: number;
}

const NAME = /^(\d{8}T\d{9}Z)_([0-9a-f]{16})(?:_(.+))?\.([A-Za-z0-9]+)$/;

function stamp(d: Date): string {
  // 2026-11-20T10:00:00.123Z → 20261120T100000123Z: sortable, and valid in a message id.
  return d.toISOString().replace(/[-:.]/g, '');
}

function unstamp(s: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z$/.exec(s)!;
  return new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`);
}

/** Keeps names filesystem- and message-id-safe. */
function safeName(name: string): string {
  return name
    .replace(/[^A-Za-z0-9_.-]/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 60);
}

export async function sha256File(file: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(file), h);
  return h.digest('hex');
}

async function fsyncPath(p: string, flags = 'r'): Promise<void> {
  const fh = await open(p, flags);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class Spool {
  readonly queueDir: string;
  readonly incomingDir: string;
  readonly rejectedDir: string;
  readonly stateDir: string;

  constructor(
    readonly dir: string,
    readonly limits: SpoolLimits,
    private readonly logger: Logger,
  ) {
    this.queueDir = path.join(dir, 'queue');
    this.incomingDir = path.join(dir, 'incoming');
    this.rejectedDir = path.join(dir, 'rejected');
    this.stateDir = path.join(dir, 'state');
  }

  async init(): Promise<void> {
    for (const d of [this.queueDir, this.incomingDir, this.rejectedDir, this.stateDir]) {
      await mkdir(d, { recursive: true });
    }
    // A capture still in incoming/ was never committed (the process died while writing it).
    for (const f of await readdir(this.incomingDir)) {
      await rm(path.join(this.incomingDir, f), { force: true });
      this.logger.warn({ file: f }, 'discarded a capture that was interrupted while being written');
    }
  }

  /** A fresh path in incoming/ for a capture command to write to. */
  incomingPath(ext: string): string {
    return path.join(this.incomingDir, `${Date.now()}-${randomBytes(4).toString('hex')}.${ext}`);
  }

  /**
   * Commits a finished file into the queue: fsync, hash, atomic rename. With `move`, the source
   * is moved (across filesystems: copied, then removed); otherwise it must be in incoming/.
   */
  async commit(file: string, capturedAt: Date, opts: { originalName?: string } = {}): Promise<SpoolEntry> {
    const ext =
      path
        .extname(opts.originalName ?? file)
        .slice(1)
        .toLowerCase() || 'bin';
    const base = opts.originalName
      ? safeName(path.basename(opts.originalName, path.extname(opts.originalName)))
      : '';
    let src = file;
    if (path.dirname(path.resolve(file)) !== this.incomingDir) {
      // Bring it into incoming/ first so the final step is a rename within one filesystem.
      const staged = this.incomingPath(ext);
      try {
        await rename(file, staged);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
        await copyFile(file, staged);
        await fsyncPath(staged, 'r+');
        await unlink(file);
      }
      src = staged;
    }
    await fsyncPath(src, 'r+');
    const sha = await sha256File(src);
    const name = `${stamp(capturedAt)}_${sha.slice(0, 16)}${base ? `_${base}` : ''}.${ext}`;
    const target = path.join(this.queueDir, name);
    await rename(src, target);
    await fsyncPath(this.queueDir);
    const entry = this.parse(name, (await stat(target)).size);
    if (!entry) throw new Error(`unparseable spool name ${name}`);
    this.logger.info({ capture: name, bytes: entry.bytes }, 'capture spooled');
    await this.enforceLimits();
    return entry;
  }

  private parse(name: string, bytes: number): SpoolEntry | undefined {
    const m = NAME.exec(name);
    if (!m) return undefined;
    const [, ts, sha, orig, ext] = m;
    return {
      name,
      path: path.join(this.queueDir, name),
      // Deterministic from the capture: its time and content.
      messageId: `${ts}_${sha}`,
      capturedAt: unstamp(ts!),
      fileName: `${orig ?? `capture-${ts}`}.${ext}`,
      bytes,
    };
  }

  /** Queued captures, oldest first. */
  async list(): Promise<SpoolEntry[]> {
    const out: SpoolEntry[] = [];
    for (const name of (await readdir(this.queueDir)).sort()) {
      try {
        const e = this.parse(name, (await stat(path.join(this.queueDir, name))).size);
        if (e) out.push(e);
      } catch {
        // removed meanwhile
      }
    }
    return out;
  }

  async removeIncoming(file: string): Promise<void> {
    await rm(file, { force: true });
  }

  /** The server confirmed it: forget the capture. */
  async remove(entry: SpoolEntry): Promise<void> {
    await rm(entry.path, { force: true });
  }

  async reject(entry: SpoolEntry, reason: string): Promise<void> {
    await rename(entry.path, path.join(this.rejectedDir, entry.name)).catch(() => undefined);
    this.logger.error({ capture: entry.name, reason }, 'capture rejected by the server; moved to rejected/');
  }

  /** Drops the oldest captures while the queue is over its limits. */
  async enforceLimits(): Promise<void> {
    const entries = await this.list();
    let bytes = entries.reduce((s, e) => s + e.bytes, 0);
    let files = entries.length;
    for (const e of entries) {
      if (bytes <= this.limits.maxBytes && files <= this.limits.maxFiles) break;
      await rm(e.path, { force: true });
      bytes -= e.bytes;
      files--;
      this.logger.warn(
        { capture: e.name, bytes: e.bytes, spoolBytes: bytes, spoolFiles: files, limits: this.limits },
        'spool full: dropped the oldest capture',
      );
    }
  }
}
