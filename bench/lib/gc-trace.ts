/**
 * Counts a Node process' garbage collections from its `--trace-gc` lines on stdout, e.g.
 * `[123:0x5…]   5123 ms: Mark-Compact 44.9 (57.2) -> 44.8 (56.0) MB, 60.1 / 0.0 ms  (…) …`:
 * the collector's name, then the main-thread pause before the slash. Only the first isolate that
 * prints (the main thread's) is counted: worker threads (the sha256 offload, the HEIF decoder) have
 * heaps of their own, and their collections are not the service's. Read by snapshot/since so that
 * a bench counts the collections of one interval (bench/curl-gc.ts: one upload).
 */
export interface GcCounts {
  markCompacts: number;
  scavenges: number;
  /** Main-thread pause of both kinds, ms. */
  gcPauseMs: number;
  /** Why each Mark-Compact ran (V8's reason text after the mutator utilisation), and how often. */
  markCompactReasons: Record<string, number>;
}

const LINE =
  /\d+ ms: (Mark-Compact|Scavenge|Minor Mark-Compact|Mark-Compact \(reduce\))\b.*?MB, ([\d.]+) \/ [\d.]+ ms(?:.*?mu = [\d.]+\) (.*))?/;

export class GcCounter {
  private mainIsolate: string | undefined;
  private counts: GcCounts = { markCompacts: 0, scavenges: 0, gcPauseMs: 0, markCompactReasons: {} };

  /** One stdout line; lines that are not GC traces are ignored. */
  line(text: string): void {
    const m = LINE.exec(text);
    if (!m) return;
    const isolate = /^\[\d+:(0x[0-9a-f]+)\]/.exec(text)?.[1];
    this.mainIsolate ??= isolate;
    if (isolate !== this.mainIsolate) return;
    if (m[1] === 'Scavenge' || m[1] === 'Minor Mark-Compact') this.counts.scavenges++;
    else {
      this.counts.markCompacts++;
      const reason = (m[3] ?? '?').replace(/[;\s]+$/, '');
      this.counts.markCompactReasons[reason] = (this.counts.markCompactReasons[reason] ?? 0) + 1;
    }
    this.counts.gcPauseMs += Number(m[2]);
  }

  snapshot(): GcCounts {
    return { ...this.counts, markCompactReasons: { ...this.counts.markCompactReasons } };
  }

  since(then: GcCounts): GcCounts {
    return {
      markCompacts: this.counts.markCompacts - then.markCompacts,
      scavenges: this.counts.scavenges - then.scavenges,
      gcPauseMs: this.counts.gcPauseMs - then.gcPauseMs,
      markCompactReasons: Object.fromEntries(
        Object.entries(this.counts.markCompactReasons)
          .map(([k, n]) => [k, n - (then.markCompactReasons[k] ?? 0)] as const)
          .filter(([, n]) => n > 0),
      ),
    };
  }
}
