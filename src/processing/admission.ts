/**
 * Admission control for new uploads (issue 22 §2): while the oldest image job waiting in its lane
 * has waited longer than `maxBacklogSeconds`, new upload sessions are refused with
 * `503 processing_backlog` and `Retry-After` (until it is younger than half the bound), so that the
 * CPU goes to the backlog instead of to more uploads that would wait behind it. Nothing accepted is
 * ever dropped: only sessions not yet created are refused; uploads already under way finish, and
 * their jobs run.
 *
 * The image lane is the signal (app.ts): its jobs take a second, so a backlog of seconds there means
 * processing is behind. Videos queue in their own lane, where minutes of waiting behind one
 * transcode are normal; they would make any bound of seconds refuse everything.
 *
 * The queue's age is read at most once a second per process (one index lookup). Only the first
 * reading is waited for; after it, a request decides on the last reading while the next one is
 * taken in the background, so that no session waits for the pool (which is busiest exactly when
 * admission matters) just to learn whether it may go on. If the age cannot be read (the database
 * is down), sessions are admitted: their own statements then answer whatever the outage calls for.
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
   * the bound, letting one burst in per reading). Retry-After is a quarter to half the bound
   * (1–30 s), drawn per refusal: long enough for the refused clients to leave the CPU to the backlog
   * for a while, and spread so that they do not all come back in the same second.
   */
  async check(): Promise<void> {
    const bound = this.maxBacklogSeconds;
    if (bound <= 0) return;
    if (performance.now() - this.readAt >= this.refreshMs) {
      const first = this.readAt === -Infinity;
      this.reading ??= this.read().finally(() => (this.reading = undefined));
      if (first) await this.reading;
    }
    if (this.ageSeconds > bound) this.refusing = true;
    else if (this.ageSeconds < bound / 2) this.refusing = false;
    if (!this.refusing) return;
    const longest = Math.min(MAX_RETRY_AFTER_SECONDS, Math.max(1, Math.ceil(bound / 2)));
    const retryAfter =
      Math.ceil(longest / 2) + Math.floor(Math.random() * (longest - Math.ceil(longest / 2) + 1));
    throw new AppError(
      'processing_backlog',
      `Processing is behind (the oldest image waiting for processing has waited ${Math.round(this.ageSeconds)} s; the bound is ${bound} s); new uploads are refused for now: retry in ${retryAfter} seconds.`,
      { backlogSeconds: Math.round(this.ageSeconds), maxBacklogSeconds: bound },
      { 'retry-after': String(retryAfter) },
    );
  }

  /** Resolves once no reading is in flight (tests). */
  async settled(): Promise<void> {
    await this.reading;
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
