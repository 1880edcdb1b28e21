/**
 * CPU time by process (from /proc), for benches that must say which resource saturates: a process
 * tree's CPU seconds grouped by command name (the service's `node`, its Postgres backends, ffmpeg),
 * and the whole machine's busy CPU seconds (so that what other tenants took is the difference).
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICK = 100; // USER_HZ on Linux

interface Proc {
  pid: number;
  ppid: number;
  comm: string;
  seconds: number;
}

function readProc(pid: number): Proc | undefined {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = st.lastIndexOf(')');
    const f = st.slice(close + 2).split(' ');
    return {
      pid,
      ppid: Number(f[1]),
      comm: st.slice(st.indexOf('(') + 1, close),
      seconds: (Number(f[11]) + Number(f[12])) / TICK,
    };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** CPU seconds of `root` and every living descendant, summed by command name. */
export function treeCpu(root: number): Record<string, number> {
  const all = readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map((n) => readProc(Number(n)))
    .filter((p): p is Proc => p !== undefined);
  const children = new Map<number, Proc[]>();
  for (const p of all) children.set(p.ppid, [...(children.get(p.ppid) ?? []), p]);
  const out: Record<string, number> = {};
  const stack = all.filter((p) => p.pid === root);
  while (stack.length > 0) {
    const p = stack.pop()!;
    const name = p.pid === root ? 'self' : p.comm;
    out[name] = (out[name] ?? 0) + p.seconds;
    stack.push(...(children.get(p.pid) ?? []));
  }
  return out;
}

/**
 * CPU seconds of `pid`'s children that have exited and been waited for (its cutime + cstime):
 * short-lived tools such as ffmpeg, which `treeCpu` no longer sees once they are gone.
 */
export function reapedChildrenSeconds(pid: number): number {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / TICK;
}

/** Busy CPU seconds of the whole machine (all cores: user + nice + system + irq + softirq + steal). */
export function machineBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return (user! + nice! + system! + irq! + softirq! + steal!) / TICK;
}

/** `after - before` per key (keys of either; a process that exited meanwhile is not counted). */
export function cpuDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of new Set([...Object.keys(before), ...Object.keys(after)]))
    out[k] = Math.max(0, (after[k] ?? 0) - (before[k] ?? 0));
  return out;
}
