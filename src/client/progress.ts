/** Upload progress: monotonic bytes sent, total, a smoothed rate and an ETA. */

export interface Progress {
  /** `paused`: `pause()` was called; sending resumes with `resume()`. */
  phase: 'hashing' | 'uploading' | 'paused' | 'completing' | 'processing' | 'done';
  /** Bytes hashed so far (the sha256 is computed before the first byte is sent). */
  bytesHashed: number;
  /** Bytes of the file known to be on the server or in flight; never decreases. */
  bytesSent: number;
  totalBytes: number;
  /** Bytes found already stored when the upload resumed (included in bytesSent). */
  resumedBytes: number;
  /** Recent upload rate, bytes per second (0 until measurable). */
  bytesPerSecond: number;
  /** Seconds left at the current rate; null while unknown. */
  etaSeconds: number | null;
  partsDone: number;
  partCount: number;
}

export type ProgressListener = (p: Progress) => void;

/**
 * Per-part high-water marks: a retried part does not make the total go backwards; it only
 * advances again once the retry passes where the failed attempt stopped.
 */
export class ProgressTracker {
  private readonly perPart = new Map<number, number>();
  private readonly done = new Set<number>();
  private sent = 0;
  private resumed = 0;
  private samples: { t: number; bytes: number }[] = [];
  private lastEmit = 0;
  private phase: Progress['phase'] = 'uploading';

  constructor(
    readonly totalBytes: number,
    readonly partCount: number,
    private readonly listener: ProgressListener | undefined,
    private readonly intervalMs = 100,
    private readonly now: () => number = () => Date.now(),
  ) {}

  /** Parts found already stored on resume (a part this tracker saw finish is not counted twice). */
  resumedPart(partNumber: number, bytes: number): void {
    if (this.done.has(partNumber)) return;
    const before = Math.min(this.perPart.get(partNumber) ?? 0, bytes);
    this.perPart.set(partNumber, bytes);
    this.sent += bytes - before;
    this.resumed += bytes - before;
    this.done.add(partNumber);
  }

  /** `bytes` of part `partNumber` have been sent in the current attempt. */
  update(partNumber: number, bytes: number): void {
    const before = this.perPart.get(partNumber) ?? 0;
    if (bytes <= before) return;
    this.perPart.set(partNumber, bytes);
    this.sent += bytes - before;
    this.emit(false);
  }

  partDone(partNumber: number, bytes: number): void {
    this.update(partNumber, bytes);
    this.done.add(partNumber);
    this.emit(true);
  }

  setPhase(phase: Progress['phase']): void {
    this.phase = phase;
    this.emit(true);
  }

  snapshot(): Progress {
    const t = this.now();
    this.samples.push({ t, bytes: this.sent });
    // Rate over the last 5 seconds of samples.
    while (this.samples.length > 2 && t - this.samples[0]!.t > 5000) this.samples.shift();
    const first = this.samples[0]!;
    const dt = (t - first.t) / 1000;
    const rate = dt > 0.05 ? (this.sent - first.bytes) / dt : 0;
    const left = this.totalBytes - this.sent;
    return {
      phase: this.phase,
      bytesHashed: this.totalBytes,
      bytesSent: this.sent,
      totalBytes: this.totalBytes,
      resumedBytes: this.resumed,
      bytesPerSecond: rate,
      etaSeconds: left === 0 ? 0 : rate > 0 ? left / rate : null,
      partsDone: this.done.size,
      partCount: this.partCount,
    };
  }

  emit(force: boolean): void {
    if (!this.listener) return;
    const t = this.now();
    if (!force && t - this.lastEmit < this.intervalMs) return;
    this.lastEmit = t;
    this.listener(this.snapshot());
  }
}
