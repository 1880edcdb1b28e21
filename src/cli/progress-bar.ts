/** Per-file progress bars: redrawn in place on a terminal, one line per milestone otherwise. */
import type { Progress } from '../client/node.ts';
import { formatBytes, formatDuration } from './common.ts';

export class ProgressBars {
  private readonly lines: string[] = [];
  private drawn = 0;
  private readonly lastPct = new Map<number, number>();

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly tty = Boolean(process.stderr.isTTY),
  ) {}

  add(label: string): number {
    this.lines.push(`${label}  queued`);
    return this.lines.length - 1;
  }

  set(i: number, label: string, text: string): void {
    this.lines[i] = `${label}  ${text}`;
    if (this.tty) this.redraw();
  }

  /** Non-terminal output: a line at each 25 % and at the end. */
  milestone(i: number, label: string, text: string, pct: number): void {
    if (this.tty) return this.set(i, label, text);
    const step = Math.floor(pct / 25) * 25;
    if ((this.lastPct.get(i) ?? -1) >= step) return;
    this.lastPct.set(i, step);
    this.out.write(`${label}  ${text}\n`);
  }

  line(i: number, label: string, text: string): void {
    if (this.tty) this.set(i, label, text);
    else this.out.write(`${label}  ${text}\n`);
  }

  private redraw(): void {
    if (this.drawn > 0) this.out.write(`\x1b[${this.drawn}A`);
    for (const l of this.lines) this.out.write(`\x1b[2K${l.slice(0, (this.out.columns || 120) - 1)}\n`);
    this.drawn = this.lines.length;
  }
}

export function renderProgress(p: Progress, width = 24): { text: string; pct: number } {
  const pct = p.totalBytes > 0 ? (100 * p.bytesSent) / p.totalBytes : 0;
  const filled = Math.round((width * pct) / 100);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  if (p.phase === 'hashing') {
    const hashed = p.totalBytes > 0 ? (100 * p.bytesHashed) / p.totalBytes : 0;
    return {
      text: `hashing ${hashed.toFixed(0).padStart(3)}% ${formatBytes(p.bytesHashed)}/${formatBytes(p.totalBytes)}`,
      pct: 0,
    };
  }
  const rate = p.bytesPerSecond > 0 ? `${formatBytes(p.bytesPerSecond)}/s` : '';
  const parts = p.partCount > 1 ? ` parts ${p.partsDone}/${p.partCount}` : '';
  const text = `${bar} ${pct.toFixed(0).padStart(3)}% ${formatBytes(p.bytesSent)}/${formatBytes(p.totalBytes)} ${rate} ETA ${formatDuration(p.etaSeconds)}${parts} ${p.phase === 'uploading' ? '' : p.phase}`;
  return { text: text.trimEnd(), pct };
}
