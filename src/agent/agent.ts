/**
 * The camera device agent: captures (a command on a schedule) or watches an inbox directory,
 * spools every capture durably, and uploads the backlog oldest first whenever the server answers.
 * Capturing never waits for the network.
 */
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { FileStateStore, MediaryError, mimeTypeFor, uploadFile, type MediaryClient } from '../client/node.ts';
import { sleep } from '../client/retry.ts';
import type { Spool, SpoolEntry } from './spool.ts';

export interface AgentOptions {
  client: MediaryClient;
  spool: Spool;
  logger: Logger;
  cameraId?: string;
  reason?: string;
  capture?: { command: string; intervalMs: number; ext: string; timeoutMs: number };
  watch?: { dir: string; pollMs: number; settleMs: number };
  /** Parts in flight per upload. */
  concurrency: number;
  /** Longest pause between upload attempts while the server is unreachable. */
  maxBackoffMs: number;
}

/** Quotes a path for `sh -c`. */
const shQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A rejection no retry can change: the capture goes to rejected/ instead of blocking the queue. */
function isPermanent(err: unknown): boolean {
  if (!(err instanceof MediaryError)) return false;
  if (err.status === 401 || err.status === 403 || err.status === 408 || err.status === 429) return false;
  return err.status >= 400 && err.status < 500;
}

export class Agent {
  private stopped = false;
  private readonly stop = new AbortController();
  private wake: (() => void) | undefined;
  private readonly states: FileStateStore;
  private readonly warnedTypes = new Set<string>();
  /** Upload and capture in progress, awaited on shutdown. */
  private current: Promise<unknown> = Promise.resolve();
  private capturing: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: AgentOptions) {
    this.states = new FileStateStore(o.spool.stateDir);
  }

  async run(opts: { once?: boolean } = {}): Promise<void> {
    await this.o.spool.init();
    const { logger } = this.o;
    logger.info(
      {
        server: this.o.client.server,
        camera: this.o.cameraId ?? 'default',
        spool: this.o.spool.dir,
        limits: this.o.spool.limits,
        mode: this.o.capture ? 'capture' : this.o.watch ? 'watch' : 'upload-only',
      },
      'agent started',
    );
    if (opts.once) {
      if (this.o.capture) await this.captureOnce();
      if (this.o.watch) await this.scanInbox(new Map(), true);
      await this.drain(true);
      return;
    }
    await Promise.all([
      this.o.capture ? this.captureLoop() : Promise.resolve(),
      this.o.watch ? this.watchLoop() : Promise.resolve(),
      this.uploadLoop(),
    ]);
  }

  /** Stops scheduling work; an upload in flight gets `graceMs` to finish (else it resumes next start). */
  async shutdown(graceMs = 5000): Promise<void> {
    this.stopped = true;
    this.stop.abort();
    this.wake?.();
    const inFlight = Promise.all([
      this.current.catch(() => undefined),
      this.capturing.catch(() => undefined),
    ]);
    await Promise.race([inFlight, sleep(graceMs)]);
  }

  private nudge() {
    this.wake?.();
  }

  private async pause(ms: number): Promise<void> {
    if (this.stopped) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
    this.wake = undefined;
  }

  // ---- capture -------------------------------------------------------------------------

  private async captureLoop(): Promise<void> {
    const { intervalMs } = this.o.capture!;
    let next = Date.now();
    while (!this.stopped) {
      const p = this.captureOnce().catch((err: unknown) => {
        this.o.logger.error({ err }, 'capture could not be spooled');
      });
      this.capturing = p;
      await p;
      // A fixed schedule: a slow capture skips ticks instead of drifting.
      next += intervalMs;
      const now = Date.now();
      if (next < now) next = now + intervalMs - ((now - next) % intervalMs);
      await sleep(next - now, this.stop.signal).catch(() => undefined);
    }
  }

  async captureOnce(): Promise<SpoolEntry | undefined> {
    const { command, ext, timeoutMs } = this.o.capture!;
    const { spool, logger } = this.o;
    const capturedAt = new Date();
    const out = spool.incomingPath(ext);
    const cmd = command.includes('{output}') ? command.replaceAll('{output}', shQuote(out)) : command;
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn('sh', ['-c', cmd], {
        env: { ...process.env, MEDIARY_OUTPUT: out, MEDIARY_CAPTURED_AT: capturedAt.toISOString() },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => {
        stderr = (stderr + c.toString()).slice(-2000);
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        resolve({ code: -1, stderr: err.message });
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    });
    const size = await stat(out).then(
      (s) => s.size,
      () => 0,
    );
    if (result.code !== 0 || size === 0) {
      logger.warn(
        { exitCode: result.code, bytes: size, stderr: result.stderr.trim().slice(-500) },
        'capture command failed; trying again at the next interval',
      );
      await spool.removeIncoming(out);
      return undefined;
    }
    const entry = await spool.commit(out, capturedAt);
    this.nudge();
    return entry;
  }

  // ---- watch ---------------------------------------------------------------------------

  private async watchLoop(): Promise<void> {
    const seen = new Map<string, { size: number; mtimeMs: number }>();
    while (!this.stopped) {
      await this.scanInbox(seen, false).catch((err: unknown) =>
        this.o.logger.error({ err }, 'cannot read the watched directory'),
      );
      await sleep(this.o.watch!.pollMs, this.stop.signal).catch(() => undefined);
    }
  }

  /**
   * Moves files that stopped changing into the spool. A file counts as finished when its size and
   * mtime are the same on two scans and it is at least `settleMs` old (`all`: take everything now).
   */
  async scanInbox(seen: Map<string, { size: number; mtimeMs: number }>, all: boolean): Promise<void> {
    const { dir, settleMs } = this.o.watch!;
    const names = await readdir(dir);
    for (const name of names.sort()) {
      if (name.startsWith('.')) continue;
      const full = path.join(dir, name);
      const s = await stat(full).catch(() => undefined);
      if (!s?.isFile() || s.size === 0) continue;
      if (!mimeTypeFor(name)) {
        if (!this.warnedTypes.has(name)) {
          this.warnedTypes.add(name);
          this.o.logger.warn({ file: name }, 'not an image or video type the server accepts; left in place');
        }
        continue;
      }
      const prev = seen.get(name);
      seen.set(name, { size: s.size, mtimeMs: s.mtimeMs });
      const stable = prev && prev.size === s.size && prev.mtimeMs === s.mtimeMs;
      if (!all && (!stable || Date.now() - s.mtimeMs < settleMs)) continue;
      seen.delete(name);
      await this.o.spool.commit(full, new Date(s.mtimeMs), { originalName: name });
      this.nudge();
    }
  }

  // ---- upload --------------------------------------------------------------------------

  private async uploadLoop(): Promise<void> {
    while (!this.stopped) {
      const drained = await this.drain(false);
      await this.pause(drained ? 2000 : 0);
    }
  }

  /**
   * Uploads queued captures oldest first. Returns true when the queue is empty; on a transient
   * failure it backs off (growing to maxBackoffMs) and returns false to start again from the oldest.
   */
  private backoffMs = 0;
  async drain(once: boolean): Promise<boolean> {
    const { spool, logger, client } = this.o;
    for (;;) {
      if (this.stopped) return false;
      const entries = await spool.list();
      if (entries.length === 0) return true;
      const entry = entries[0]!;
      try {
        const p = this.uploadEntry(entry);
        this.current = p;
        await p;
        this.backoffMs = 0;
      } catch (err) {
        if (isPermanent(err)) {
          await spool.reject(entry, err instanceof Error ? err.message : String(err));
          continue;
        }
        this.backoffMs = Math.min(this.o.maxBackoffMs, Math.max(1000, this.backoffMs * 2));
        logger.warn(
          {
            err: err instanceof Error ? { message: err.message, code: (err as MediaryError).code } : err,
            backlog: entries.length,
            retryInMs: this.backoffMs,
            server: client.server,
          },
          'upload failed; keeping the capture and retrying later',
        );
        if (once) throw err;
        // Not woken by new captures: an unreachable server is not retried faster than the backoff.
        await sleep(this.backoffMs, this.stop.signal).catch(() => undefined);
        return false;
      }
    }
  }

  private async uploadEntry(entry: SpoolEntry): Promise<void> {
    const { client, logger, spool } = this.o;
    const result = await uploadFile(entry.path, {
      client,
      messageId: entry.messageId,
      capturedAt: entry.capturedAt,
      cameraId: this.o.cameraId,
      reason: this.o.reason,
      fileName: entry.fileName,
      concurrency: this.o.concurrency,
      stateStore: this.states,
      // Few quick retries per request; the agent's own backoff handles long outages.
      retry: { retries: 2, baseDelayMs: 300, maxDelayMs: 3000 },
    });
    if (result.status === 'FAILED') {
      await spool.reject(entry, result.media.error?.message ?? 'the server marked it FAILED');
      return;
    }
    await spool.remove(entry);
    logger.info(
      { capture: entry.name, mediaId: result.mediaId, status: result.status, replay: !result.created },
      'capture uploaded',
    );
  }
}
