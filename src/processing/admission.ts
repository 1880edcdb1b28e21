/**
 * Admission control for new uploads (issue 22 §2): while the oldest processing job waiting in the
 * queue has waited longer than `maxBacklogSeconds`, new upload sessions are refused with
 * `503 processing_backlog` and `Retry-After` (until it is younger than half the bound), so that the CPU goes to the backlog instead of to
 * more uploads that would wait behind it. Nothing accepted is ever dropped: only sessions not yet
 * created are refused; uploads already under way finish, and their jobs run.
 *
 * The queue's age is read at most once a second per process (one index lookup), shared by every
 * request meanwhile. If it cannot be read (the database is down), sessions are admitted: their own
 * statements then answer whatever the outage calls for.
 */
import type { Logger } from 'pino';
import { AppError } from '../errors.ts';

/** How long one reading of the backlog's age is used. */
const REFRESH_MS = 1000;
/** The longest wait a refusal asks for. */
const MAX_RETRY_AFTER_SECONDS = 30;

export class Admission {
  private ageSeconds = 0;
  private readAt = -Infinity;
  private reading: Promise<void> | undefined;
  private refusing = false;

  constructor(
    /** Seconds the oldest waiting processing job has waited (0 when none waits). */
    private readonly backlogAge: () => Promise<number>,
    private readonly maxBacklogSeconds: number,
    private readonly logger: Logger,
    private readonly refreshMs = REFRESH_MS,
  ) {}

  /**
   * Throws `processing_backlog` (503 + Retry-After) once the backlog is older than the bound, and
   * keeps refusing until it is younger than half the bound (so that admission does not flap at
   * the bound, letting one burst in per reading). Retry-After is half the bound (1–30 s): long
   * enough for the refused clients to leave the CPU to the backlog for a while.
   */
  async check(): Promise<void> {
    const bound = this.maxBacklogSeconds;
    if (bound <= 0) return;
    if (performance.now() - this.readAt >= this.refreshMs) {
      this.reading ??= this.read().finally(() => (this.reading = undefined));
      await this.reading;
    }
    if (this.ageSeconds > bound) this.refusing = true;
    else if (this.ageSeconds < bound / 2) this.refusing = false;
    if (!this.refusing) return;
    const retryAfter = Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(bound / 2)));
    throw new AppError(
      'processing_backlog',
      `Processing is behind (the oldest waiting upload has waited ${Math.round(this.ageSeconds)} s; the bound is ${bound} s); new uploads are refused for now: retry in ${retryAfter} seconds.`,
      { backlogSeconds: Math.round(this.ageSeconds), maxBacklogSeconds: bound },
      { 'retry-after': String(retryAfter) },
    );
  }

  private async read(): Promise<void> {
    try {
      this.ageSeconds = await this.backlogAge();
    } catch (err) {
      this.logger.warn({ err }, 'could not read the processing backlog; admitting uploads');
      this.ageSeconds = 0;
    }
    this.readAt = performance.now();
  }
}
