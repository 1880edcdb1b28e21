/**
 * Per-thread CPU accounting from Linux /proc (bench:tus) for the benches that compare where time goes: per process, per
 * thread, and the whole machine (every core, including the kernel's writeback threads that no
 * process is charged for). Clock ticks of 10 ms, reported in seconds.
 */
import { readFileSync, readdirSync } from 'node:fs';

const TICK = 0.01;

export interface ThreadTimes {
  name: string;
  user: number;
  sys: number;
}

function parseStat(text: string): ThreadTimes {
  const name = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { name, user: Number(fields[11]) * TICK, sys: Number(fields[12]) * TICK };
}

/** CPU seconds of a whole process so far (threads that ended included). */
export function processCpu(pid: number): { user: number; sys: number } {
  const t = parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  return { user: t.user, sys: t.sys };
}

/** CPU seconds of each live thread of a process, by thread id. */
export function threadCpu(pid: number): Map<number, ThreadTimes> {
  const out = new Map<number, ThreadTimes>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      out.set(Number(tid), parseStat(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** Machine-wide CPU seconds so far (all cores): busy (user+nice+system+irq+softirq), idle, iowait. */
export function machineCpu(): { busy: number; idle: number; iowait: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  return {
    busy: (user + nice + system + irq + softirq + steal) * TICK,
    idle: idle * TICK,
    iowait: iowait * TICK,
  };
}

/** What a process's threads used between two {@link threadCpu} snapshots, grouped by `group`. */
export function threadDelta(
  before: Map<number, ThreadTimes>,
  after: Map<number, ThreadTimes>,
  group: (tid: number, t: ThreadTimes) => string,
): Record<string, { user: number; sys: number }> {
  const out: Record<string, { user: number; sys: number }> = {};
  for (const [tid, t] of after) {
    const b = before.get(tid) ?? { name: t.name, user: 0, sys: 0 };
    const g = (out[group(tid, t)] ??= { user: 0, sys: 0 });
    g.user += t.user - b.user;
    g.sys += t.sys - b.sys;
  }
  return out;
}

/** CPU seconds so far of every live process with this command name (e.g. the embedded `postgres`). */
export function processesNamedCpu(name: string): number {
  let total = 0;
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const t = parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
      if (t.name === name) total += t.user + t.sys;
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}
