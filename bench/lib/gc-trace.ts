/**
 * Counts a Node process' garbage collections from its `--trace-gc` lines on stdout, e.g.
 * `[123:0x5…]   5123 ms: Mark-Compact 44.9 (57.2) -> 44.8 (56.0) MB, 60.1 / 0.0 ms  (…) …`:
 * the collector's name, then the main-thread pause before the slash. Read by snapshot/since so
 * that a bench counts the collections of one interval (bench/curl-gc.ts: one upload).
 */
export interface GcCounts {
  markCompacts: number;
  scavenges: number;
  /** Main-thread pause of both kinds, ms. */
  gcPauseMs: number;
}

const LINE = /\d+ ms: (Mark-Compact|Scavenge|Minor Mark-Compact|Mark-Compact \(reduce\))\b.*?MB, ([\d.]+) \/ [\d.]+ ms/;

export class GcCounter {
  private counts: GcCounts = { markCompacts: 0, scavenges: 0, gcPauseMs: 0 };

  /** One stdout line; lines that are not GC traces are ignored. */
  line(text: string): void {
    const m = LINE.exec(text);
    if (!m) return;
    if (m[1] === 'Scavenge' || m[1] === 'Minor Mark-Compact') this.counts.scavenges++;
    else this.counts.markCompacts++;
    this.counts.gcPauseMs += Number(m[2]);
  }

  snapshot(): GcCounts {
    return { ...this.counts };
  }

  since(then: GcCounts): GcCounts {
    return {
      markCompacts: this.counts.markCompacts - then.markCompacts,
      scavenges: this.counts.scavenges - then.scavenges,
      gcPauseMs: this.counts.gcPauseMs - then.gcPauseMs,
    };
  }
}
